// rtcat: a wscat-like WebSocket client; with --reconnect, rtpush::client (backoff, recovery).
#include <rtpush.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/program_options.hpp>

#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace po = boost::program_options;
namespace net = boost::asio;

namespace {

struct options {
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::vector<std::string> execute;
    std::vector<rtpush::topic> subscriptions;
    rtpush::tls_client_options tls;
    double wait = 2;
    /// A listener (--subscribe, --reconnect) without an explicit -w: the end of stdin (or of
    /// the -x commands) does not end it; SIGINT/SIGTERM does.
    bool stay = false;
    bool slash = false;  // --slash: /ping, /pong, /close lines send control frames
    bool follow = false; // -L: follow 3xx redirections of the opening handshake
    bool show_ping_pong = false;
    bool color = true;
    bool json = false;
    bool reconnect = false;
    std::string client_id;     // sent in `hello`: un-acked messages follow across reconnects
    std::string token_command; // --token-command: prints a fresh token
    bool ack = true;           // answer messages that carry an `ackId`
    bool tty_out = false;
    bool tty_in = false;
};

// CHANNEL[:org[:dept[:queue]]]
bool parse_subscription(std::string_view s, rtpush::topic& t) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        auto const colon = s.find(':', start);
        parts.emplace_back(s.substr(start, colon - start));
        if (colon == std::string_view::npos)
            break;
        start = colon + 1;
    }
    if (parts.size() > 4)
        return false;
    t.channel = parts[0];
    if (parts.size() > 1)
        t.scope.org = parts[1];
    if (parts.size() > 2)
        t.scope.dept = parts[2];
    if (parts.size() > 3)
        t.scope.queue = parts[3];
    return !rtpush::validate(t);
}

// The text to print for a received message: compact JSON (--json), pretty on a terminal, or
// as received. One line per message in a pipe, so embedded newlines are re-serialised away.
std::string render(const options& o, const std::string& text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec)
        return text;
    if (o.json || !o.tty_out)
        return boost::json::serialize(v);
    // a readable indentation for a person at a terminal
    std::string out;
    int depth = 0;
    bool in_string = false, escaped = false;
    std::string const s = boost::json::serialize(v);
    for (char c : s) {
        if (in_string) {
            out += c;
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            out += c;
            break;
        case '{':
        case '[':
            out += c;
            out += '\n';
            out.append(static_cast<std::size_t>(2 * ++depth), ' ');
            break;
        case '}':
        case ']':
            out += '\n';
            out.append(static_cast<std::size_t>(2 * --depth), ' ');
            out += c;
            break;
        case ',':
            out += ",\n";
            out.append(static_cast<std::size_t>(2 * depth), ' ');
            break;
        case ':':
            out += ": ";
            break;
        default:
            out += c;
        }
    }
    return out;
}

void print_incoming(const options& o, const std::string& text) {
    std::string const body = render(o, text);
    if (o.tty_out)
        std::cout << (o.color ? "\x1b[32m< " : "< ") << body << (o.color ? "\x1b[0m" : "")
                  << std::endl;
    else
        std::cout << body << std::endl;
}

// The `ackId` of an rtpush message that must be acknowledged, or empty.
std::string ack_id_of(const boost::json::value& v) {
    if (!v.is_object())
        return {};
    auto const* a = v.get_object().if_contains("ackId");
    return a && a->is_string() ? std::string(a->get_string()) : std::string{};
}

std::string ack_id_of(const std::string& text) {
    boost::system::error_code ec;
    auto const v = boost::json::parse(text, ec);
    return ec ? std::string{} : ack_id_of(v);
}

// The token a --token-command prints (surrounding white space removed); throws with the
// command's exit status when it fails or prints nothing.
std::string token_from_command(const std::string& command) {
    FILE* p = ::popen(command.c_str(), "r");
    if (!p)
        throw std::runtime_error("--token-command: cannot run '" + command + "'");
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0 && out.size() < (64 << 10);)
        out.append(buf, n);
    int const status = ::pclose(p);
    if (status != 0)
        throw std::runtime_error("--token-command '" + command + "' failed (status " +
                                 std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : status) +
                                 ")");
    auto const first = out.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        throw std::runtime_error("--token-command '" + command + "' printed no token");
    return out.substr(first, out.find_last_not_of(" \t\r\n") + 1 - first);
}

bool is_type(const std::string& text, std::string_view type) {
    boost::system::error_code ec;
    auto const v = boost::json::parse(text, ec);
    auto const* t = !ec && v.is_object() ? v.get_object().if_contains("type") : nullptr;
    return t && t->is_string() && t->get_string() == type;
}

std::string ack_message(const std::string& id) {
    boost::json::object o;
    o["type"] = "ack";
    o["id"] = id;
    return boost::json::serialize(o);
}

std::string hello_message(const std::string& client_id) {
    boost::json::object o;
    o["type"] = "hello";
    o["clientId"] = client_id;
    return boost::json::serialize(o);
}

std::string base64(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int const n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()),
                                  static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// Where a redirection from `from` to `location` leads, as a ws:// or wss:// URL; empty when
// it cannot be a WebSocket URL. http(s):// map to ws(s)://; a path keeps scheme and host.
std::string redirect_target(const std::string& from, const std::string& location) {
    for (auto const& [scheme, ws] :
         {std::pair<std::string_view, std::string_view>{"ws://", "ws://"},
          {"wss://", "wss://"},
          {"http://", "ws://"},
          {"https://", "wss://"}})
        if (location.starts_with(scheme))
            return std::string(ws) + location.substr(scheme.size());
    if (!location.starts_with("/"))
        return {};
    auto const host = from.find("://");
    auto const path = from.find('/', host + 3);
    return from.substr(0, path) + location;
}

void print_note(const options& o, const std::string& text) {
    // Notes go to stderr, so stdout stays one message per line for pipes.
    std::cerr << (o.color && o.tty_out ? "\x1b[33m" : "") << text
              << (o.color && o.tty_out ? "\x1b[0m" : "") << std::endl;
}

// What rtcat is doing with its one connection (plain mode) or client (--reconnect).
class session {
public:
    session(net::io_context& ioc, options o)
        : ioc_(ioc)
        , opt_(std::move(o))
        , wait_timer_(ioc) {
        conn_.emplace(ioc.get_executor(), 64 << 20, opt_.tls);
        if (opt_.reconnect) {
            rtpush::client_config c;
            c.urls.push_back(opt_.url);
            c.tls = opt_.tls;
            c.headers = opt_.headers;
            c.subscriptions = opt_.subscriptions;
            c.client_id = opt_.client_id;
            c.auto_ack = opt_.ack;
            if (!opt_.token_command.empty())
                c.token_provider = [cmd = opt_.token_command] {
                    return token_from_command(cmd);
                };
            client_.emplace(ioc.get_executor(), std::move(c));
        }
    }

    int exit_code() const noexcept { return exit_code_; }

    net::awaitable<void> run() {
        if (client_)
            co_await run_client();
        else
            co_await run_plain();
    }

    /// A line from stdin (posted by the reading thread).
    void on_line(std::string line) {
        if (line.empty())
            return;
        if (!ready_) { // typed or piped before the connection is up: keep the order
            pending_.push_back(std::move(line));
            return;
        }
        // Member coroutines, not lambdas: a lambda coroutine refers to its closure, which
        // would be gone by the time the coroutine runs.
        net::co_spawn(ioc_, send_line(std::move(line)), [](std::exception_ptr) {});
    }

    /// Input is over (stdin closed, or the -x commands were sent): wait -w, then finish; a
    /// listener (`stay`) stays until SIGINT/SIGTERM.
    void on_input_end() {
        if (!ready_ && !client_) { // the wait is for replies to what was sent: from connected
            input_end_pending_ = true;
            return;
        }
        if (opt_.stay) {
            if (!input_ended_)
                print_note(opt_, "# input ended; staying connected until SIGINT/SIGTERM (-w N "
                                 "to leave N seconds after it)");
            input_ended_ = true;
            return;
        }
        net::co_spawn(ioc_, finish_after_wait(), [](std::exception_ptr) {});
    }

    void stop() {
        if (stopping_)
            return;
        stopping_ = true;
        if (client_) {
            client_->stop();
            return;
        }
        net::co_spawn(ioc_, close_connection(), [](std::exception_ptr) {});
    }

private:
    net::awaitable<void> flush_pending() {
        ready_ = true;
        auto lines = std::move(pending_);
        pending_.clear();
        for (auto& l : lines)
            co_await send_line(std::move(l));
        if (input_end_pending_) {
            input_end_pending_ = false;
            on_input_end();
        }
    }

    // --slash: `/ping [data]`, `/pong [data]`, `/close [code [reason]]` as control frames.
    net::awaitable<void> send_command(std::string line) {
        auto const space = line.find(' ');
        std::string const cmd = line.substr(0, space);
        std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
        if (client_) {
            print_note(opt_, "error: " + cmd +
                                 ": slash commands need a plain connection (not "
                                 "--reconnect)");
            co_return;
        }
        std::string f;
        using rtpush::detail::opcode;
        if (cmd == "/ping" || cmd == "/pong") {
            if (arg.size() > 125) {
                print_note(opt_, "error: " + cmd + ": at most 125 bytes of data");
                co_return;
            }
            rtpush::detail::append_frame(f, cmd == "/ping" ? opcode::ping : opcode::pong, arg, true,
                                         0x5a17c0de);
        } else if (cmd == "/close") {
            unsigned long code = 1000;
            std::string reason;
            if (!arg.empty()) {
                auto const sp = arg.find(' ');
                std::size_t used = 0;
                try {
                    code = std::stoul(arg.substr(0, sp), &used);
                } catch (std::exception const&) {
                    used = 0;
                }
                if (used != arg.substr(0, sp).size() || code < 1000 || code > 4999) {
                    print_note(opt_, "error: /close [code [reason]]: a code is 1000-4999");
                    co_return;
                }
                reason = sp == std::string::npos ? "" : arg.substr(sp + 1);
            }
            if (reason.size() > 123) {
                print_note(opt_, "error: /close: at most 123 bytes of reason");
                co_return;
            }
            rtpush::detail::append_frame(
                f, opcode::close,
                rtpush::detail::close_payload(static_cast<std::uint16_t>(code), reason), true,
                0x5a17c0de);
            closed_by_user_ = true;
            stopping_ = true;
        } else {
            print_note(opt_, "error: unknown command " + cmd +
                                 " (/ping [data], /pong [data], /close [code [reason]])");
            co_return;
        }
        try {
            co_await conn_->async_send_raw(std::move(f));
        } catch (std::exception const& e) {
            print_note(opt_, std::string("error: not sent: ") + e.what());
        }
    }

    net::awaitable<void> send_line(std::string line) {
        if (opt_.slash && line.starts_with("/")) {
            co_await send_command(std::move(line));
            co_return;
        }
        try {
            if (client_)
                co_await client_->async_send(std::move(line));
            else
                co_await conn_->async_send(line);
        } catch (std::exception const& e) {
            print_note(opt_, std::string("error: not sent: ") + e.what());
        }
    }

    net::awaitable<void> finish_after_wait() {
        wait_timer_.expires_after(std::chrono::milliseconds(static_cast<long>(opt_.wait * 1000)));
        co_await wait_timer_.async_wait(net::as_tuple(net::use_awaitable));
        stop();
    }

    // Sends the close frame only: run_plain's read loop is the one reader and sees the
    // server's answer. A server that does not answer is cut off after a while.
    net::awaitable<void> close_connection() {
        try {
            std::string f;
            rtpush::detail::append_frame(f, rtpush::detail::opcode::close,
                                         rtpush::detail::close_payload(1000, ""), true, 0x5a17c0de);
            co_await conn_->async_send_raw(std::move(f));
            net::steady_timer t(ioc_);
            t.expires_after(std::chrono::seconds(2));
            co_await t.async_wait(net::use_awaitable);
        } catch (std::exception const&) {
        }
        boost::system::error_code ec;
        conn_->socket().close(ec);
    }

    // Connects, following redirections with -L (at most 10). False: reported, exit code 1.
    net::awaitable<bool> connect_plain() {
        std::string url = opt_.url;
        auto headers = opt_.headers;
        for (int hops = 0;; ++hops) {
            try {
                if (!opt_.token_command.empty() && hops == 0)
                    headers.emplace_back("Authorization",
                                         "Bearer " + token_from_command(opt_.token_command));
                co_await conn_->async_connect(url, headers);
                co_return true;
            } catch (std::exception const& e) {
                auto const status = conn_->handshake_status();
                std::string const next =
                    status >= 300 && status < 400 && !conn_->handshake_location().empty()
                        ? redirect_target(url, conn_->handshake_location())
                        : std::string{};
                if (next.empty() || !opt_.follow || hops == 10) {
                    std::string why = std::string("error: ") + e.what();
                    if (!next.empty() && !opt_.follow)
                        why += " (redirected to " + next + "; -L follows redirections)";
                    else if (!next.empty())
                        why += " (more than 10 redirections)";
                    print_note(opt_, why);
                    co_return false;
                }
                print_note(opt_, "# redirected (HTTP " + std::to_string(status) + ") to " + next);
                url = next;
                conn_.emplace(ioc_.get_executor(), 64 << 20, opt_.tls);
            }
        }
    }

    net::awaitable<void> run_plain() {
        if (!co_await connect_plain()) {
            exit_code_ = 1;
            co_return;
        }
        if (opt_.tty_in)
            print_note(opt_, "Connected (press CTRL+C to quit)");
        if (!opt_.client_id.empty()) {
            std::string const hello = hello_message(opt_.client_id);
            co_await conn_->async_send(hello);
        }
        rtpush::detail::stream_tracker none; // builds plain subscribe messages
        for (auto const& t : opt_.subscriptions) {
            std::string const m = none.subscribe_message(t, "");
            co_await conn_->async_send(m);
        }
        for (auto const& x : opt_.execute)
            co_await conn_->async_send(x);
        if (!opt_.execute.empty())
            on_input_end();
        co_await flush_pending();
        for (;;) {
            rtpush::client_connection::event ev;
            try {
                ev = co_await conn_->async_read_event();
            } catch (boost::system::system_error const& e) {
                if (!stopping_) {
                    print_note(opt_, std::string("error: ") + e.what());
                    exit_code_ = 1;
                }
                break;
            }
            using kind = rtpush::client_connection::event;
            if (ev.kind == kind::message) {
                print_incoming(opt_, ev.payload);
                if (!opt_.token_command.empty() && is_type(ev.payload, "token_expiring")) {
                    // Re-authenticate: the connection and its subscriptions stay.
                    std::string msg;
                    try {
                        msg = rtpush::detail::authenticate_message(
                            token_from_command(opt_.token_command));
                    } catch (std::exception const& e) {
                        print_note(opt_, std::string("error: ") + e.what());
                    }
                    if (!msg.empty()) {
                        co_await conn_->async_send(msg);
                        print_note(opt_, "# re-authenticated");
                    }
                }
                if (std::string const id = ack_id_of(ev.payload); !id.empty()) {
                    if (opt_.ack) {
                        std::string const ack = ack_message(id);
                        co_await conn_->async_send(ack);
                    }
                    print_note(opt_, (opt_.ack ? "# acked " : "# ack required: ") + id);
                }
            } else if (ev.kind == kind::ping || ev.kind == kind::pong) {
                if (opt_.show_ping_pong)
                    print_note(opt_, std::string(ev.kind == kind::ping ? "< Received ping"
                                                                       : "< Received pong") +
                                         " (data: \"" + ev.payload + "\")");
            } else {
                if (!stopping_ || closed_by_user_) {
                    print_note(opt_, "Disconnected (code: " + std::to_string(ev.code) +
                                         ", reason: \"" + ev.payload + "\")");
                    if (ev.code != 1000 && ev.code != 1001 && !closed_by_user_)
                        exit_code_ = 1;
                }
                break;
            }
        }
        wait_timer_.cancel();
    }

    net::awaitable<void> run_client() {
        auto& c = *client_;
        net::co_spawn(ioc_, c.async_run(), [this](std::exception_ptr e) {
            if (e)
                exit_code_ = 1;
        });
        bool executed = false;
        for (;;) {
            rtpush::client_event ev;
            try {
                ev = co_await c.async_receive();
            } catch (boost::system::system_error const&) {
                break; // the client stopped and everything was printed
            }
            if (ev.kind == rtpush::client_event::message) {
                print_incoming(opt_, ev.text);
                // rtpush::client acked it already (unless --no-ack)
                if (std::string const id = ack_id_of(ev.json); !id.empty())
                    print_note(opt_, (opt_.ack ? "# acked " : "# ack required: ") + id);
                continue;
            }
            std::string note = "# " + std::string(rtpush::to_string(ev.state));
            switch (ev.state) {
            case rtpush::client_state::connecting:
            case rtpush::client_state::connected:
                note += " " + ev.url;
                break;
            case rtpush::client_state::subscribed:
                note += " " + ev.topic;
                if (ev.recovered)
                    note += *ev.recovered ? " (recovered)" : " (not recovered: " + ev.reason + ")";
                break;
            case rtpush::client_state::reconnecting:
                note += " attempt " + std::to_string(ev.attempt) + " in " +
                        std::to_string(ev.delay.count()) + " ms: " + ev.reason;
                break;
            case rtpush::client_state::stopped:
                break;
            }
            print_note(opt_, note);
            if (ev.state == rtpush::client_state::connected && !executed) {
                executed = true;
                for (auto const& x : opt_.execute) {
                    try {
                        co_await c.async_send(x);
                    } catch (std::exception const& e) {
                        print_note(opt_, std::string("error: not sent: ") + e.what());
                    }
                }
                if (!opt_.execute.empty())
                    on_input_end();
                co_await flush_pending();
            }
        }
        wait_timer_.cancel();
    }

    net::io_context& ioc_;
    options opt_;
    std::optional<rtpush::client_connection> conn_; // a new one per redirection (-L)
    std::optional<rtpush::client> client_;
    net::steady_timer wait_timer_;
    std::vector<std::string> pending_;
    bool ready_ = false; // connected once: lines are sent as they come
    bool stopping_ = false;
    bool closed_by_user_ = false; // --slash /close: the server's answer ends rtcat, exit 0
    bool input_ended_ = false;
    bool input_end_pending_ = false; // stdin ended before the connection was up
    int exit_code_ = 0;
};

} // namespace

int main(int argc, char** argv) {
    po::options_description opts("rtcat: a WebSocket client in the manner of wscat (rtpush " +
                                 std::string(rtpush::version_string) +
                                 ")\n\nUsage: rtcat -c URL [options]\n\nOptions");
    // clang-format off
    opts.add_options()
        ("help,h", "show this help and exit")
        ("version,V", "print the version and exit")
        ("connect,c", po::value<std::string>(), "connect to a WebSocket server (ws:// or wss://host:port/path)")
        ("header,H", po::value<std::vector<std::string>>()->composing(), "add a handshake header \"Name: value\" (repeatable)")
        ("execute,x", po::value<std::vector<std::string>>()->composing(), "send this message after connecting (repeatable), then wait -w and exit")
        ("wait,w", po::value<double>()->default_value(2), "seconds to wait after -x commands or the end of stdin; with --subscribe or --reconnect rtcat stays connected until SIGINT/SIGTERM unless -w is given")
        ("origin,o", po::value<std::string>(), "Origin header")
        ("subprotocol,s", po::value<std::string>(), "Sec-WebSocket-Protocol header")
        ("protocol,p", po::value<unsigned>(), "Sec-WebSocket-Version to send (8 or 13; default 13)")
        ("auth", po::value<std::string>(), "send \"Authorization: Basic\" with USER:PASS")
        ("location,L", "follow HTTP redirections (3xx Location) of the opening handshake")
        ("slash", "lines /ping [data], /pong [data], /close [code [reason]] send control frames")
        ("show-ping-pong,P", "print received pings and pongs (not with --reconnect)")
        ("no-color", "no colours")
        ("no-check,n", "wss://: do not check the server's certificate (testing only)")
        ("ca", po::value<std::string>(), "wss://: trust the CAs of this PEM file instead of the system's")
        ("cert", po::value<std::string>(), "wss://: client certificate (PEM chain), with --key")
        ("key", po::value<std::string>(), "wss://: the client certificate's private key (PEM)")
        ("subscribe", po::value<std::vector<std::string>>()->composing(), "subscribe to CHANNEL[:org[:dept[:queue]]] (repeatable)")
        ("token", po::value<std::string>(), "send \"Authorization: Bearer TOKEN\"")
        ("token-command", po::value<std::string>(), "run this shell command for a token (what it prints) at every connection, and again to re-authenticate when the server says the token is expiring (token_expiring): the connection stays")
        ("json", "print each message as one compact JSON line")
        ("reconnect", "stay connected: backoff, resubscribe and recover (rtpush::client)")
        ("client-id", po::value<std::string>(), "send hello {clientId}: the server re-sends messages not yet acked, also after a reconnect")
        ("no-ack", "do not answer messages that carry an ackId (they are re-sent)");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, opts), vm);
        po::notify(vm);
    } catch (std::exception const& e) {
        std::cerr << "rtcat: " << e.what() << "\nTry 'rtcat --help'.\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << opts
                  << "\nOn a terminal: interactive, `< ` marks what arrives. In a pipe: "
                     "each stdin line is sent, each message received is one stdout line; "
                     "after stdin ends rtcat waits -w seconds for replies (a listener, "
                     "--subscribe or --reconnect, stays until SIGINT/SIGTERM unless -w is "
                     "given).\n";
        return 0;
    }
    if (vm.count("version")) {
        std::cout << "rtcat " << rtpush::version_string << "\n";
        return 0;
    }
    if (!vm.count("connect")) {
        std::cerr << "rtcat: --connect URL is required\nTry 'rtcat --help'.\n";
        return 2;
    }
    options o;
    o.url = vm["connect"].as<std::string>();
    boost::system::error_code ec;
    rtpush::parse_ws_url(o.url, ec);
    if (ec) {
        std::cerr << "rtcat: invalid URL '" << o.url << "' (ws[s]://host[:port][/path])\n";
        return 2;
    }
    if (vm.count("header"))
        for (auto const& h : vm["header"].as<std::vector<std::string>>()) {
            auto const colon = h.find(':');
            if (colon == std::string::npos) {
                std::cerr << "rtcat: a header is \"Name: value\", got '" << h << "'\n";
                return 2;
            }
            auto value = h.substr(colon + 1);
            value.erase(0, value.find_first_not_of(' '));
            o.headers.emplace_back(h.substr(0, colon), value);
        }
    if (vm.count("origin"))
        o.headers.emplace_back("Origin", vm["origin"].as<std::string>());
    if (vm.count("subprotocol"))
        o.headers.emplace_back("Sec-WebSocket-Protocol", vm["subprotocol"].as<std::string>());
    if (vm.count("protocol")) {
        auto const v = vm["protocol"].as<unsigned>();
        if (v != 8 && v != 13) {
            std::cerr << "rtcat: --protocol (-p) is 8 or 13\n";
            return 2;
        }
        o.headers.emplace_back("Sec-WebSocket-Version", std::to_string(v));
    }
    if (vm.count("auth")) {
        auto const& a = vm["auth"].as<std::string>();
        if (a.find(':') == std::string::npos) {
            std::cerr << "rtcat: --auth is USER:PASS\n";
            return 2;
        }
        if (vm.count("token")) {
            std::cerr << "rtcat: --auth and --token both set Authorization; give one\n";
            return 2;
        }
        o.headers.emplace_back("Authorization", "Basic " + base64(a));
    }
    if (vm.count("token-command") && (vm.count("token") || vm.count("auth"))) {
        std::cerr << "rtcat: --token-command, --token and --auth all set Authorization; give one\n";
        return 2;
    }
    if (vm.count("token-command"))
        o.token_command = vm["token-command"].as<std::string>();
    if (vm.count("token"))
        o.headers.emplace_back("Authorization", "Bearer " + vm["token"].as<std::string>());
    if (vm.count("execute"))
        o.execute = vm["execute"].as<std::vector<std::string>>();
    if (vm.count("subscribe"))
        for (auto const& s : vm["subscribe"].as<std::vector<std::string>>()) {
            rtpush::topic t;
            if (!parse_subscription(s, t)) {
                std::cerr << "rtcat: --subscribe CHANNEL[:org[:dept[:queue]]], got '" << s << "'\n";
                return 2;
            }
            o.subscriptions.push_back(std::move(t));
        }
    o.wait = vm["wait"].as<double>();
    if (!(o.wait >= 0)) {
        std::cerr << "rtcat: --wait must be >= 0\n";
        return 2;
    }
    o.stay = (!o.subscriptions.empty() || vm.count("reconnect")) && vm["wait"].defaulted();
    o.slash = vm.count("slash") > 0;
    o.follow = vm.count("location") > 0;
    o.show_ping_pong = vm.count("show-ping-pong") > 0;
    o.color = vm.count("no-color") == 0;
    o.json = vm.count("json") > 0;
    o.reconnect = vm.count("reconnect") > 0;
    o.ack = vm.count("no-ack") == 0;
    if (vm.count("client-id")) {
        o.client_id = vm["client-id"].as<std::string>();
        if (!rtpush::valid_client_id(o.client_id)) {
            std::cerr << "rtcat: --client-id is 1-128 characters of [A-Za-z0-9_.@:-]\n";
            return 2;
        }
    }
    o.tty_out = ::isatty(STDOUT_FILENO) == 1;
    o.tty_in = ::isatty(STDIN_FILENO) == 1;
    o.tls.verify = vm.count("no-check") == 0;
    if (vm.count("ca"))
        o.tls.ca_file = vm["ca"].as<std::string>();
    if (vm.count("cert") != vm.count("key")) {
        std::cerr << "rtcat: --cert and --key go together\n";
        return 2;
    }
    if (vm.count("cert")) {
        o.tls.cert_file = vm["cert"].as<std::string>();
        o.tls.key_file = vm["key"].as<std::string>();
    }

    net::io_context ioc(1);
    bool const read_stdin = o.execute.empty();
    session s(ioc, o);
    net::co_spawn(ioc, s.run(), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (std::exception const& x) {
                std::cerr << "rtcat: " << x.what() << "\n";
            }
        }
        ioc.stop(); // the stdin thread may still be blocked in a read
    });
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code err, int) {
        if (!err)
            s.stop();
    });
    if (read_stdin) {
        // A blocking reader thread works for terminals, pipes and files alike; lines go to
        // the io thread, which owns the connection.
        std::thread([&ioc, &s] {
            std::string line;
            while (std::getline(std::cin, line))
                net::post(ioc, [&s, line] { s.on_line(line); });
            net::post(ioc, [&s] { s.on_input_end(); });
        }).detach();
    }
    ioc.run();
    std::cout.flush();
    // The reader thread may be blocked on a terminal; do not wait for it.
    std::_Exit(s.exit_code());
}
