// rtd: a structured logger writing one JSON object per line.
#ifndef RTD_JSON_LOGGER_HPP
#define RTD_JSON_LOGGER_HPP

#include <rtpush/log.hpp>
#include <rtpush/protocol.hpp>

#include <boost/json/serialize.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace rtd {

/// Where the log lines go: stdout, written the way corking writes frames (docs/operations.md,
/// "Logs"). A line is written at once when nothing was written within the last
/// `flush_interval`; under a burst the lines that follow wait in a buffer, written together
/// by one call at the end of that interval (a write per line cost about a tenth of a
/// WebSocket handshake: docs/benchmarks.md). Warnings and errors, and everything buffered
/// before them, go out at once; stop() writes what is left and joins the flushing thread.
class json_log_writer {
public:
    explicit json_log_writer(std::FILE* out, std::chrono::milliseconds flush_interval)
        : out_(out)
        , interval_(flush_interval)
        , buffered_(flush_interval.count() > 0) {
        if (buffered_)
            flusher_ = std::thread([this] { run(); });
    }
    json_log_writer(const json_log_writer&) = delete;
    json_log_writer& operator=(const json_log_writer&) = delete;
    ~json_log_writer() { stop(); }

    void write(std::string_view line, bool urgent) {
        auto const now = std::chrono::steady_clock::now();
        std::lock_guard lock(mutex_);
        bool const was_empty = pending_.empty();
        pending_.append(line);
        if (urgent || !buffered_ || stopping_ || now - last_write_ >= interval_ ||
            pending_.size() >= max_pending) {
            write_pending(now);
            return;
        }
        if (was_empty)
            wake_.notify_one(); // the flusher writes it at last_write_ + interval_
    }

    /// Writes what is buffered and joins the flusher; later lines are written at once.
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_one();
        if (flusher_.joinable())
            flusher_.join();
        std::lock_guard lock(mutex_);
        write_pending(std::chrono::steady_clock::now());
    }

private:
    static constexpr std::size_t max_pending = 64 * 1024;

    void write_pending(std::chrono::steady_clock::time_point now) {
        if (pending_.empty())
            return;
        std::fwrite(pending_.data(), 1, pending_.size(), out_);
        std::fflush(out_);
        pending_.clear();
        last_write_ = now;
    }

    void run() {
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            if (pending_.empty()) {
                wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
                continue;
            }
            auto const due = last_write_ + interval_;
            if (wake_.wait_until(lock, due, [this] { return stopping_; }))
                break;
            write_pending(std::chrono::steady_clock::now());
        }
    }

    std::FILE* const out_;
    std::chrono::milliseconds const interval_;
    bool const buffered_; // a flusher thread runs (until stop())
    std::mutex mutex_;
    std::condition_variable wake_;
    std::string pending_;
    std::chrono::steady_clock::time_point last_write_{};
    bool stopping_ = false;
    std::thread flusher_;
};

/// One log line: `ts`, `level`, `event`, then the event's fields, in that order.
inline std::string json_log_line(rtpush::log_level lv, std::string_view event,
                                 const boost::json::object& fields) {
    // A field named like the line's own keys replaces it, as it always has.
    for (auto const& [k, v] : fields)
        if (k == "ts" || k == "level" || k == "event") {
            boost::json::object o;
            o["ts"] = rtpush::iso8601_now();
            o["level"] = rtpush::to_string(lv);
            o["event"] = event;
            for (auto const& [k2, v2] : fields)
                o[k2] = v2;
            std::string line = boost::json::serialize(o);
            line.push_back('\n');
            return line;
        }
    std::string line;
    line.reserve(128);
    line += "{\"ts\":\"";
    line += rtpush::iso8601_now();
    line += "\",\"level\":\"";
    line += rtpush::to_string(lv);
    line += "\",\"event\":";
    line += boost::json::serialize(boost::json::string_view(event.data(), event.size()));
    for (auto const& [k, v] : fields) {
        line += ',';
        line += boost::json::serialize(k);
        line += ':';
        line += boost::json::serialize(v);
    }
    line += "}\n";
    return line;
}

/// The logger rtd gives the server; its lines go through `out`.
inline rtpush::logger make_json_logger(rtpush::log_level level,
                                       std::shared_ptr<json_log_writer> out) {
    rtpush::logger l;
    l.level = level;
    l.sink = [out = std::move(out)](rtpush::log_level lv, std::string_view event,
                                    const boost::json::object& fields) {
        out->write(json_log_line(lv, event, fields), lv >= rtpush::log_level::warning);
    };
    return l;
}

inline bool parse_log_level(std::string_view s, rtpush::log_level& out) {
    using rtpush::log_level;
    for (auto l :
         {log_level::debug, log_level::info, log_level::warning, log_level::error, log_level::off})
        if (rtpush::to_string(l) == s) {
            out = l;
            return true;
        }
    return false;
}

} // namespace rtd

#endif
