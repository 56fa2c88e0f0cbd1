//
// rtpush: an allocator that allocates exactly what is asked.
//
#ifndef RTPUSH_DETAIL_EXACT_ALLOCATOR_HPP
#define RTPUSH_DETAIL_EXACT_ALLOCATOR_HPP

#include <cstddef>
#include <new>

namespace rtpush::detail {

/// std::allocator's behaviour under a type of its own. Asio treats std::allocator<void> as
/// "no preference" and substitutes its recycling allocator, which reuses per-thread cached
/// blocks of whatever size an earlier operation needed. For an operation that stays pending
/// for the whole life of an idle connection (the readiness wait), that wastes hundreds of
/// bytes per connection; bound to this allocator, the operation takes exactly its own size.
template <class T>
struct exact_allocator {
    using value_type = T;
    exact_allocator() noexcept = default;
    template <class U>
    exact_allocator(const exact_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { ::operator delete(p, n * sizeof(T)); }
    template <class U>
    bool operator==(const exact_allocator<U>&) const noexcept {
        return true;
    }
};

} // namespace rtpush::detail

#endif
