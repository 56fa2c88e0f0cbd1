//
// rtpush: what a client's full outbound queue does with one more message.
//
#ifndef RTPUSH_OVERFLOW_POLICY_HPP
#define RTPUSH_OVERFLOW_POLICY_HPP

namespace rtpush {

/// What a full queue does with one more frame (server_config::queue_policy).
enum class overflow_policy {
    drop_oldest, ///< discard the oldest queued data frame (the client sees a gap in `seq`)
    disconnect,  ///< refuse the frame; the session closes the connection with 1008
};

} // namespace rtpush

#endif
