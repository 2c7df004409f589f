// The iterator of the library's lazy ranges (IMapIterator, AsCompleted, MapResults): each pulls
// its next item with next() and keeps the item the iterator is at, as std::ranges::istream_view
// does, so the iterator itself is a pointer to its range.
#pragma once

#include <cstddef>
#include <iterator>

namespace multiprocessing::detail {

/// A std::input_iterator over `Owner`, whose `std::optional<V> next()` gives the next item
/// (nothing at the end) and whose member `current_` (an std::optional<V>) holds the item the
/// iterator is at; Owner befriends it.
template <class Owner, class V>
class pull_iterator {
public:
    using iterator_concept = std::input_iterator_tag;
    using iterator_category = std::input_iterator_tag;
    using value_type = V;
    using difference_type = std::ptrdiff_t;
    pull_iterator() = default;
    explicit pull_iterator(Owner* o) noexcept : owner_(o) {}
    V& operator*() const { return *owner_->current_; }
    V* operator->() const { return &*owner_->current_; }
    pull_iterator& operator++() {
        owner_->current_ = owner_->next();
        return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const pull_iterator& a, std::default_sentinel_t) { return a.at_end(); }

private:
    [[nodiscard]] bool at_end() const noexcept { return !owner_ || !owner_->current_; }
    Owner* owner_ = nullptr;
};

}  // namespace multiprocessing::detail
