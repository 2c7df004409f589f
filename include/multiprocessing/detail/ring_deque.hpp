// A double-ended queue in one ring of slots, which keeps its memory while it is in use.
// std::deque allocates a block per few dozen elements and frees it when the last one leaves: with
// one thread pushing and another popping (the caller submitting, the result thread taking
// answers), every block crossed threads, and each free() from the popping thread waited for the
// pushing thread's malloc arena lock, a futex sleep and wake-up per block (measured in the pool's
// dispatcher on a burst of 100k submits).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace multiprocessing::detail {

/// A deque of T (default-constructible, movable) in a ring that doubles as it fills. A popped
/// slot is reset to T{}, so what it held is released at once. The memory is kept until the
/// deque is empty and holds more than `keep` slots.
template <class T>
class ring_deque {
public:
    [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return n_; }
    /// Element i from the front.
    [[nodiscard]] T& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & (slots_.size() - 1)]; }
    [[nodiscard]] const T& operator[](std::size_t i) const noexcept {
        return slots_[(head_ + i) & (slots_.size() - 1)];
    }
    [[nodiscard]] T& front() noexcept { return (*this)[0]; }
    [[nodiscard]] const T& front() const noexcept { return (*this)[0]; }
    [[nodiscard]] T& back() noexcept { return (*this)[n_ - 1]; }
    [[nodiscard]] const T& back() const noexcept { return (*this)[n_ - 1]; }

    void push_back(T v) {
        if (n_ == slots_.size()) grow();
        (*this)[n_] = std::move(v);
        ++n_;
    }
    void push_front(T v) {
        if (n_ == slots_.size()) grow();
        head_ = (head_ + slots_.size() - 1) & (slots_.size() - 1);
        slots_[head_] = std::move(v);
        ++n_;
    }
    void pop_front() noexcept {
        front() = T{};
        head_ = (head_ + 1) & (slots_.size() - 1);
        --n_;
        if (n_ == 0) shrink();
    }
    void pop_back() noexcept {
        back() = T{};
        --n_;
        if (n_ == 0) shrink();
    }
    /// Removes element i from the front, moving the ones behind it up.
    void erase(std::size_t i) noexcept {
        for (; i + 1 < n_; ++i) (*this)[i] = std::move((*this)[i + 1]);
        pop_back();
    }
    void clear() noexcept {
        while (n_ > 0) pop_back();
    }

private:
    /// Slots kept while empty: enough for a pool's usual backlog without a malloc per burst.
    static constexpr std::size_t keep = 4096;

    void grow() {
        std::vector<T> bigger(slots_.empty() ? 16 : slots_.size() * 2);
        for (std::size_t i = 0; i < n_; ++i) bigger[i] = std::move((*this)[i]);
        slots_.swap(bigger);
        head_ = 0;
    }
    void shrink() noexcept {
        head_ = 0;
        if (slots_.size() > keep) std::vector<T>().swap(slots_);
    }

    std::vector<T> slots_;  // a power of two of them, or none
    std::size_t head_ = 0;  // the front's slot
    std::size_t n_ = 0;
};

}  // namespace multiprocessing::detail
