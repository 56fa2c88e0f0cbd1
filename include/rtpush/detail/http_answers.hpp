//
// rtpush: the HTTP answers every route and refusal shares (JSON bodies, errors with a code,
// CORS, the access log). Free of I/O: the caller writes the response.
//
#ifndef RTPUSH_DETAIL_HTTP_ANSWERS_HPP
#define RTPUSH_DETAIL_HTTP_ANSWERS_HPP

#include <rtpush/detail/broadcast_request.hpp>
#include <rtpush/detail/http_util.hpp>
#include <rtpush/ingest.hpp>
#include <rtpush/log.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace rtpush::detail {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

/// A JSON body with `no-store` (every answer of the API is live data).
inline http_response json_response(boost::beast::http::status status,
                                   const boost::json::value& body, unsigned version = 11) {
    http_response res{status, version};
    res.set(boost::beast::http::field::content_type, "application/json");
    res.set(boost::beast::http::field::cache_control, "no-store");
    res.body() = boost::json::serialize(body);
    res.body().push_back('\n');
    res.prepare_payload();
    return res;
}

/// `{"error": {"code", "message"}}` (docs/protocol.md, "Errors").
inline http_response json_error(boost::beast::http::status status, std::string_view code,
                                std::string_view message, unsigned version = 11) {
    boost::json::object e;
    e["code"] = code;
    e["message"] = printable(message); // it may echo a request's path or Origin
    boost::json::object o;
    o["error"] = std::move(e);
    return json_response(status, o, version);
}

/// A bad field of a request body: the message names it, and so does `field` (for programs).
inline http_response field_error(boost::beast::http::status status, std::string_view code,
                                 const validation_error& e, unsigned version = 11) {
    boost::json::object err;
    err["code"] = code;
    // A field's path may hold a key of the request: printable like every echo.
    err["message"] = printable(e.field.empty() ? e.message : e.field + ": " + e.message);
    err["field"] = printable(e.field);
    boost::json::object o;
    o["error"] = std::move(err);
    return json_response(status, o, version);
}

/// An optional JSON object body (an admin route's options): an empty body is an empty
/// object; anything but an object is the 400 answer to send instead.
inline std::variant<boost::json::object, http_response> optional_object_body(std::string_view body,
                                                                             unsigned version) {
    if (body.empty())
        return boost::json::object{};
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object())
        return field_error(
            boost::beast::http::status::bad_request, "INVALID_MESSAGE",
            {"", ec ? "malformed JSON body: " + ec.message() : "body must be a JSON object"},
            version);
    return std::move(v.get_object());
}

/// 405 with the methods the path takes.
inline http_response method_not_allowed(const http_request& req, std::string_view path,
                                        std::string_view allow) {
    namespace http = boost::beast::http;
    auto r =
        json_error(http::status::method_not_allowed, "METHOD_NOT_ALLOWED",
                   std::string(req.method_string()) + " is not allowed on " + std::string(path),
                   req.version());
    r.set(http::field::allow, allow);
    return r;
}

inline http_response text_response(std::string body, std::string_view content_type,
                                   std::string_view cache_control, unsigned version) {
    http_response res{boost::beast::http::status::ok, version};
    res.set(boost::beast::http::field::content_type, content_type);
    res.set(boost::beast::http::field::cache_control, cache_control);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

inline http_response preflight_response(unsigned version) {
    http_response res{boost::beast::http::status::no_content, version};
    res.prepare_payload();
    return res;
}

/// An answer of Engine.IO's polling transport: 200, `type`, never cached (a GET's payload,
/// the handshake's open packet, a POST's "ok").
inline http_response engine_io_text(unsigned version, std::string body,
                                    std::string_view type = "text/plain; charset=UTF-8") {
    namespace http = boost::beast::http;
    http_response res{http::status::ok, version};
    res.set(http::field::content_type, type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

/// CORS for the REST API: only origins of the allow-list get the headers (a browser then
/// refuses the answer to any other page); with an empty list, none (same-origin only).
inline void add_cors(http_response& res, std::string_view origin,
                     const std::vector<std::string>& allowed) {
    namespace http = boost::beast::http;
    if (origin.empty() || allowed.empty() || !origin_allowed(origin, allowed))
        return;
    res.set(http::field::access_control_allow_origin, origin);
    res.set(http::field::vary, "Origin");
    res.set(http::field::access_control_allow_methods, "GET, POST, OPTIONS");
    res.set(http::field::access_control_allow_headers, "Authorization, Content-Type, X-API-Key");
    res.set(http::field::access_control_max_age, "600");
}

/// The access log: one line per REST answer and refused handshake. The path without the
/// query string, which may carry a token.
inline void log_access(const logger& log, std::string_view method, std::string_view path,
                       unsigned status, std::chrono::steady_clock::time_point t0,
                       const std::string& remote) {
    if (!log.enabled(log_level::info))
        return;
    auto const us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    boost::json::object o;
    o["method"] = printable(method);
    o["path"] = printable(path);
    o["status"] = status;
    o["duration_ms"] = static_cast<double>(us) / 1000.0;
    o["remote"] = remote;
    log.log(log_level::info, "http_access", o);
}

/// `{"success": true, key: v}`.
inline boost::json::object success(std::string_view key, boost::json::value v) {
    boost::json::object o;
    o["success"] = true;
    o[key] = std::move(v);
    return o;
}

/// `{"success": true, "total_count": n, key: [...]}`.
inline boost::json::object success_list(std::string_view key, boost::json::array a) {
    boost::json::object o;
    o["success"] = true;
    o["total_count"] = a.size();
    o[key] = std::move(a);
    return o;
}

/// A refused broadcast (detail/broadcast_request.hpp): 400, naming the field when one is at
/// fault.
inline http_response fault_response(const request_fault& f, unsigned version = 11) {
    namespace http = boost::beast::http;
    return f.names_field
               ? field_error(http::status::bad_request, "INVALID_MESSAGE", f.error, version)
               : json_error(http::status::bad_request, "INVALID_MESSAGE", f.error.message, version);
}

/// A batch's answer from the answers its items would have had as single requests: each
/// item's body with its `index`, `status` and `success`; 200 when every item was published,
/// 207 (Multi-Status) when some were, else 400 when every refusal was the item's own fault
/// (503 when the engine refused them: the caller may retry the whole batch).
inline std::pair<boost::beast::http::status, boost::json::object>
batch_answer(const std::vector<http_response>& answers) {
    namespace http = boost::beast::http;
    boost::json::array results;
    std::size_t published = 0;
    bool all_client_faults = true;
    for (std::size_t i = 0; i < answers.size(); ++i) {
        auto const& a = answers[i];
        boost::system::error_code ec;
        auto v = boost::json::parse(a.body(), ec);
        boost::json::object o;
        if (!ec && v.is_object())
            o = std::move(v.get_object());
        bool const ok = a.result_int() < 300;
        published += ok;
        if (!ok && a.result_int() >= 500)
            all_client_faults = false;
        boost::json::object item;
        item["index"] = i;
        item["status"] = a.result_int();
        item["success"] = ok;
        for (auto& [k, x] : o)
            if (k != "success")
                item[k] = std::move(x);
        results.push_back(std::move(item));
    }
    boost::json::object body;
    body["success"] = published == answers.size();
    body["total"] = answers.size();
    body["published"] = published;
    body["failed"] = answers.size() - published;
    body["results"] = std::move(results);
    auto const status = published == answers.size() ? http::status::ok
                        : published > 0             ? http::status::multi_status
                        : all_client_faults         ? http::status::bad_request
                                                    : http::status::service_unavailable;
    return {status, std::move(body)};
}

/// The bytes of a bodiless response (a 101 to a WebSocket upgrade) as Beast would write them,
/// so that the session can send them in one gathered write with its first frames.
inline std::string response_head(const boost::beast::http::response_header<>& res) {
    std::string out = "HTTP/1.1 ";
    out += std::to_string(res.result_int());
    out += ' ';
    out.append(res.reason());
    out += "\r\n";
    for (auto const& f : res) {
        out.append(f.name_string());
        out += ": ";
        out.append(f.value());
        out += "\r\n";
    }
    out += "\r\n";
    return out;
}

} // namespace rtpush::detail

#endif
