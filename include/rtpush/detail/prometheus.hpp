//
// rtpush: the Prometheus text exposition format (version 0.0.4), free of I/O.
//
#ifndef RTPUSH_DETAIL_PROMETHEUS_HPP
#define RTPUSH_DETAIL_PROMETHEUS_HPP

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace rtpush::detail {

/// Writes metric families: a `# HELP` and `# TYPE` line, then its samples. Names follow the
/// Prometheus conventions (the caller's job); label values and help texts are escaped here.
class prometheus_writer {
public:
    using labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        escape(help, false);
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    void sample(std::string_view name, double value, labels ls = {}) {
        head(name, ls);
        if (std::isnan(value))
            out_ += "NaN";
        else if (std::isinf(value))
            out_ += value > 0 ? "+Inf" : "-Inf";
        else
            number(value);
        out_ += '\n';
    }

    void sample(std::string_view name, std::uint64_t value, labels ls = {}) {
        head(name, ls);
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, value);
        out_.append(buf, r.ptr);
        out_ += '\n';
    }

    /// The samples of one histogram series: a cumulative `_bucket{le}` per upper bound (in the
    /// family's base unit, e.g. seconds), `+Inf`, `_sum` and `_count`, with one optional
    /// label before `le`. `counts[i]` is the number of observations in bucket i (not
    /// cumulative); `count` is the total, observations above the last bound are only in it.
    /// The caller writes family() first.
    template <class Bounds, class Counts>
    void histogram(std::string_view name, const Bounds& bounds, const Counts& counts, double sum,
                   std::uint64_t count, std::string_view label = {},
                   std::string_view label_value = {}) {
        std::string const bucket = std::string(name) + "_bucket";
        std::uint64_t cumulative = 0;
        std::size_t i = 0;
        for (auto const bound : bounds) {
            cumulative += static_cast<std::uint64_t>(counts[i++]);
            char le[32];
            // fixed notation: le="0.0001", not "1e-04"
            auto r = std::to_chars(le, le + sizeof le, static_cast<double>(bound),
                                   std::chars_format::fixed);
            std::string_view const lv(le, static_cast<std::size_t>(r.ptr - le));
            if (label.empty())
                sample(bucket, cumulative, {{"le", lv}});
            else
                sample(bucket, cumulative, {{label, label_value}, {"le", lv}});
        }
        // Counters are read one by one while writers run: keep +Inf >= every bucket.
        count = std::max(count, cumulative);
        auto one = [&](std::string_view suffix, auto value) {
            std::string const n = std::string(name) + std::string(suffix);
            if (label.empty())
                sample(n, value);
            else
                sample(n, value, {{label, label_value}});
        };
        if (label.empty())
            sample(bucket, count, {{"le", "+Inf"}});
        else
            sample(bucket, count, {{label, label_value}, {"le", "+Inf"}});
        one("_sum", sum);
        one("_count", count);
    }

    /// One family with a single unlabelled sample.
    template <class T>
    void metric(std::string_view name, std::string_view type, std::string_view help, T value) {
        family(name, type, help);
        sample(name, value);
    }

    const std::string& str() const noexcept { return out_; }
    std::string take() noexcept { return std::move(out_); }

private:
    void head(std::string_view name, labels ls) {
        out_ += name;
        if (ls.size()) {
            out_ += '{';
            bool first = true;
            for (auto const& [k, v] : ls) {
                if (!first)
                    out_ += ',';
                first = false;
                out_ += k;
                out_ += "=\"";
                escape(v, true);
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
    }

    // Shortest text that reads back as the same double.
    void number(double v) {
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof buf, v);
        out_.append(buf, r.ptr);
    }

    // Help text escapes \ and newline; label values also ".
    void escape(std::string_view s, bool quote) {
        for (char c : s) {
            if (c == '\\')
                out_ += "\\\\";
            else if (c == '\n')
                out_ += "\\n";
            else if (c == '"' && quote)
                out_ += "\\\"";
            else
                out_ += c;
        }
    }

    std::string out_;
};

} // namespace rtpush::detail

#endif
