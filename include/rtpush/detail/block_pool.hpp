//
// rtpush: fixed-size blocks for objects that live as long as a connection.
//
#ifndef RTPUSH_DETAIL_BLOCK_POOL_HPP
#define RTPUSH_DETAIL_BLOCK_POOL_HPP

#include <cstddef>
#include <mutex>
#include <new>

namespace rtpush::detail {

/// `n` rounded up to the strictest fundamental alignment.
constexpr std::size_t round_up_to_max_align(std::size_t n) noexcept {
    constexpr std::size_t a = alignof(std::max_align_t);
    return (n + a - 1) / a * a;
}

/// Blocks of one size carved from 64 KiB slabs; a slab is given back when its last block is.
///
/// Why: a connection's long-lived objects (its session, its registry entry) are allocated at
/// the end of its handshake, between the handshake's buffers, parser and coroutine frames of
/// every connection still in its HTTP phase. Once those are freed, malloc cannot return the
/// pages that also hold a session, and after a burst of connections the process keeps several
/// times the memory its sessions use (measured: 1.2 KiB per idle connection when handshakes
/// arrive one by one, over 4 KiB when thousands are in flight). From slabs of their own, the
/// long-lived objects stay packed, and the handshakes' memory is freed whole pages at a time.
///
/// Thread-safe (one mutex; taken once per connection opened or closed). Every block carries a
/// pointer to its slab in front of it, so deallocate() needs neither the pool nor the size.
class block_pool {
public:
    explicit block_pool(std::size_t size) noexcept
        : stride_(header + round_up_to_max_align(size)) {}
    block_pool(const block_pool&) = delete;
    block_pool& operator=(const block_pool&) = delete;

    std::size_t block_size() const noexcept { return stride_ - header; }

    void* allocate() {
        std::lock_guard lock(mutex_);
        slab* s = partial_;
        if (!s) {
            s = static_cast<slab*>(::operator new(slab_size));
            s->pool = this;
            s->prev = s->next = nullptr;
            s->free = nullptr;
            s->live = 0;
            s->carved = 0;
            link(s);
        }
        void* block = nullptr;
        if (s->free) {
            block = s->free;
            s->free = s->free->next;
        } else {
            block = reinterpret_cast<unsigned char*>(s) + first_block + s->carved * stride_;
            ++s->carved;
        }
        ++s->live;
        if (!s->free && first_block + (s->carved + 1) * stride_ > slab_size)
            unlink(s); // full
        *static_cast<slab**>(block) = s;
        return static_cast<unsigned char*>(block) + header;
    }

    /// Gives back a block of any pool.
    static void deallocate(void* p) noexcept {
        if (!p)
            return;
        void* block = static_cast<unsigned char*>(p) - header;
        slab* s = *static_cast<slab**>(block);
        block_pool& pool = *s->pool;
        std::lock_guard lock(pool.mutex_);
        bool const was_full = !s->free && first_block + (s->carved + 1) * pool.stride_ > slab_size;
        auto* n = static_cast<free_node*>(block);
        n->next = s->free;
        s->free = n;
        --s->live;
        if (was_full)
            pool.link(s);
        // An empty slab is freed unless it is the only one with room (a connection opened
        // and closed over and over would otherwise allocate and free a slab each time).
        if (s->live == 0 && (pool.partial_ != s || s->next)) {
            pool.unlink(s);
            ::operator delete(s, slab_size);
        }
    }

private:
    struct free_node {
        free_node* next;
    };
    struct slab {
        block_pool* pool;
        slab* prev; // in the pool's list of slabs with room
        slab* next;
        free_node* free;
        std::size_t live;
        std::size_t carved;
    };
    static constexpr std::size_t slab_size = 64 * 1024;
    static constexpr std::size_t header = round_up_to_max_align(sizeof(slab*));
    static constexpr std::size_t first_block = round_up_to_max_align(sizeof(slab));

    void link(slab* s) noexcept {
        s->prev = nullptr;
        s->next = partial_;
        if (partial_)
            partial_->prev = s;
        partial_ = s;
    }
    void unlink(slab* s) noexcept {
        if (s->prev)
            s->prev->next = s->next;
        else if (partial_ == s)
            partial_ = s->next;
        if (s->next)
            s->next->prev = s->prev;
        s->prev = s->next = nullptr;
    }

    std::size_t stride_;
    std::mutex mutex_;
    slab* partial_ = nullptr; // slabs with a free or uncarved block
};

/// The process-wide pool of blocks of sizeof(T) (never destroyed: blocks may outlive any
/// owner, and each slab finds its pool by pointer).
template <class T>
block_pool& pool_of() {
    static block_pool* const pool = new block_pool(sizeof(T));
    return *pool;
}

/// An allocator that takes single objects from pool_of<T>() and arrays from the heap: for a
/// node-based container whose nodes live as long as connections (a shard's session registry).
template <class T>
struct pool_allocator {
    using value_type = T;
    pool_allocator() noexcept = default;
    template <class U>
    pool_allocator(const pool_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        if (n == 1)
            return static_cast<T*>(pool_of<T>().allocate());
        return static_cast<T*>(::operator new(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if (n == 1)
            block_pool::deallocate(p);
        else
            ::operator delete(p, n * sizeof(T));
    }
    template <class U>
    bool operator==(const pool_allocator<U>&) const noexcept {
        return true;
    }
};

} // namespace rtpush::detail

#endif
