//
// rtpush: how an io thread holds its writes back under load.
//
#ifndef RTPUSH_CORK_POLICY_HPP
#define RTPUSH_CORK_POLICY_HPP

namespace rtpush {

/// How an io thread decides to hold its writes back (server_config::cork_mode;
/// docs/architecture.md, "Corking").
enum class cork_policy {
    /// Follow the load: write at the end of each pass while the writes fit in the thread's
    /// time; hold them back only as long as it takes to keep them within a share of it.
    adaptive,
    /// The rule before adaptive corking: above `cork_threshold` frames per second, hold every flush
    /// back until `cork_delay` after the previous one.
    fixed,
};

} // namespace rtpush

#endif
