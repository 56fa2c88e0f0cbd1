//
// rtpush: raising the process's file-descriptor limit (one descriptor per connection).
//
#ifndef RTPUSH_DETAIL_FD_LIMIT_HPP
#define RTPUSH_DETAIL_FD_LIMIT_HPP

#include <sys/resource.h>

#include <algorithm>
#include <cstddef>

namespace rtpush::detail {

/// Raises RLIMIT_NOFILE so that `want` descriptors fit: the hard limit too when the process
/// may (root with CAP_SYS_RESOURCE), else the soft limit up to the hard one. Returns the soft
/// limit in force afterwards.
inline std::size_t raise_fd_limit(std::size_t want) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    rlim_t const target = static_cast<rlim_t>(want + 1024);
    if (target > rl.rlim_max) {
        rlimit raised{target, target};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            return static_cast<std::size_t>(target);
    }
    rl.rlim_cur = std::min(std::max(rl.rlim_cur, target), rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return static_cast<std::size_t>(rl.rlim_cur);
}

} // namespace rtpush::detail

#endif
