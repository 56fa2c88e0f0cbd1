#ifndef RTPUSH_VERSION_HPP
#define RTPUSH_VERSION_HPP

#define RTPUSH_VERSION_MAJOR 0
#define RTPUSH_VERSION_MINOR 1
#define RTPUSH_VERSION_PATCH 0

namespace rtpush {
inline constexpr const char* version_string = "0.1.0";
} // namespace rtpush

#endif
