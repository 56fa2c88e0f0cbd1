//
// rtpush: a log-linear latency histogram (HdrHistogram-like), free of I/O.
//
#ifndef RTPUSH_DETAIL_HISTOGRAM_HPP
#define RTPUSH_DETAIL_HISTOGRAM_HPP

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace rtpush::detail {

/// Records non-negative values (e.g. microseconds) with a relative error under 1/64 (1.6%):
/// values below 64 are exact, above that each power-of-two range has 64 buckets. Fixed size
/// (about 30 KiB), no allocation, O(1) record; merge() adds another histogram.
class histogram {
public:
    static constexpr int sub_bits = 6;
    static constexpr std::uint64_t sub_count = 1u << sub_bits; // 64
    static constexpr int ranges = 64 - sub_bits + 1;

    void record(std::uint64_t v, std::uint64_t n = 1) noexcept {
        counts_[index(v)] += n;
        total_ += n;
        max_ = std::max(max_, v);
        min_ = std::min(min_, v);
        sum_ += v * n;
    }

    void merge(const histogram& o) noexcept {
        for (std::size_t i = 0; i < counts_.size(); ++i)
            counts_[i] += o.counts_[i];
        total_ += o.total_;
        max_ = std::max(max_, o.max_);
        min_ = std::min(min_, o.min_);
        sum_ += o.sum_;
    }

    void reset() noexcept { *this = histogram{}; }

    std::uint64_t count() const noexcept { return total_; }
    std::uint64_t max() const noexcept { return total_ ? max_ : 0; }
    std::uint64_t min() const noexcept { return total_ ? min_ : 0; }
    double mean() const noexcept {
        return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0;
    }

    /// The value at quantile q in [0, 1] (the upper edge of its bucket, capped at max()).
    std::uint64_t quantile(double q) const noexcept {
        if (total_ == 0)
            return 0;
        auto const rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank)
                return std::min(upper(i), max_);
        }
        return max_;
    }

    /// The bucket of a value and the largest value in a bucket (exposed for tests).
    static std::size_t index(std::uint64_t v) noexcept {
        if (v < sub_count)
            return static_cast<std::size_t>(v);
        int const msb = 63 - std::countl_zero(v); // >= sub_bits
        int const shift = msb - sub_bits + 1;     // keep sub_bits bits below and at msb
        auto const sub = (v >> shift) & (sub_count / 2 - 1);
        return static_cast<std::size_t>(sub_count + (shift - 1) * (sub_count / 2) + sub);
    }

    static std::uint64_t upper(std::size_t i) noexcept {
        if (i < sub_count)
            return i;
        std::size_t const j = i - sub_count;
        int const shift = static_cast<int>(j / (sub_count / 2)) + 1;
        std::uint64_t const sub = j % (sub_count / 2) + sub_count / 2;
        return ((sub + 1) << shift) - 1;
    }

private:
    std::array<std::uint64_t, sub_count + (ranges) * (sub_count / 2)> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t min_ = ~std::uint64_t{0};
    std::uint64_t sum_ = 0;
};

} // namespace rtpush::detail

#endif
