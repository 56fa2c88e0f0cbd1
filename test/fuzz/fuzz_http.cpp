// libFuzzer target: an HTTP request as the server's handshake phase reads it (Beast's parser
// with the server's limits), then rtpush's own helpers on what it holds: the target's path
// and query (split_target, percent_decode), the Connection/Upgrade tokens, the WebSocket key,
// the Origin allow-list and the Authorization credentials.
// Properties: the path is the target's prefix and query keys are never empty; an Origin is
// allowed by a list holding itself and by an empty list, normalising is idempotent; an
// accepted WebSocket key gives a 28-character accept key; what the server echoes from the
// request into a JSON error body stays valid JSON.
#include "check.hpp"

#include <rtpush/auth.hpp>
#include <rtpush/detail/http_util.hpp>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace http = boost::beast::http;
namespace d = rtpush::detail;

namespace {

// The JSON error body the server answers a refused handshake with, echoing request text.
void check_json_echo(std::string_view echoed) {
    boost::json::object e;
    e["code"] = "INVALID_MESSAGE";
    e["message"] = d::printable(echoed);
    boost::system::error_code ec;
    auto const v = boost::json::parse(boost::json::serialize(e), ec);
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(v.is_object());
}

void check_request(const http::request<http::string_body>& req) {
    std::string_view const target = req.target();
    std::map<std::string, std::string> query;
    std::string_view const path = d::split_target(target, query);
    FUZZ_CHECK(target.substr(0, path.size()) == path);
    FUZZ_CHECK(path.find('?') == std::string_view::npos);
    for (auto const& [k, v] : query) {
        FUZZ_CHECK(!k.empty());
        FUZZ_CHECK(k.size() + v.size() <= target.size());
    }
    FUZZ_CHECK(d::percent_decode(target).size() <= target.size());
    check_json_echo(path);
    if (auto it = query.find("token"); it != query.end())
        check_json_echo(it->second);

    auto const connection = req[http::field::connection];
    bool const upgrade = d::header_has_token(connection, "upgrade") &&
                         d::iequals(req[http::field::upgrade], "websocket");
    if (d::header_has_token(connection, "Upgrade"))
        FUZZ_CHECK(upgrade == d::iequals(req[http::field::upgrade], "WEBSOCKET"));
    auto const key = req[http::field::sec_websocket_key];
    if (d::valid_websocket_key(key))
        FUZZ_CHECK(d::websocket_accept_key(key).size() == 28);

    std::string_view const origin = req[http::field::origin];
    std::string const norm = d::normalize_origin(origin);
    FUZZ_CHECK(d::normalize_origin(norm) == norm);
    FUZZ_CHECK(d::origin_allowed(origin, {}));
    FUZZ_CHECK(d::origin_allowed(origin, {std::string(origin)}));
    FUZZ_CHECK(d::origin_allowed(origin, {"https://app.example.com", "*"}));
    FUZZ_CHECK(d::origin_allowed(origin, {"https://app.example.com"}) ==
               (norm == "https://app.example.com"));
    check_json_echo(origin);

    auto const auth = req[http::field::authorization];
    auto const bearer = rtpush::detail::bearer_token(auth);
    FUZZ_CHECK(bearer.size() <= auth.size());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view const in(reinterpret_cast<const char*>(data), size);
    check_json_echo(in);

    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024); // as server::http_phase
    parser.body_limit(64 * 1024);
    parser.eager(true);
    boost::system::error_code ec;
    std::size_t at = 0;
    while (at < in.size() && !parser.is_done()) {
        std::size_t const n = parser.put(boost::asio::buffer(in.data() + at, in.size() - at), ec);
        if (ec == http::error::need_more) {
            // the stream ends here: what a peer closing mid-request leaves
            parser.put_eof(ec);
            break;
        }
        if (ec)
            break;
        FUZZ_CHECK(n <= in.size() - at);
        if (n == 0)
            break;
        at += n;
    }
    if (parser.is_header_done())
        check_request(parser.get());
    return 0;
}
