// tour: class Worker(Process): a subclass whose run() runs in the child
// Python's other way to give a process its work: derive from Process and override run(). Two
// Workers take numbers from a task queue until a None (here std::nullopt) and put (name, n, n*n)
// on a result queue; their members (a label, the two queues) reach the child under every start
// method: fork copies the object, spawn and forkserver rebuild it from its serialize() members.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <multiprocessing.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

using Result = std::tuple<std::string, int, int>;  // (worker name, n, n * n)

class Worker : public mp::Process {
public:
    Worker() : Process(this) {}  // a spawned child builds one with this, then loads the members
    Worker(std::string label, mp::Queue<std::optional<int>> tasks, mp::Queue<Result> results)
        : Process(this), label_(std::move(label)), tasks_(std::move(tasks)), results_(std::move(results)) {}

    // In the child (Python: def run(self)).
    void run() override {
        std::cout << label_ << ": " << name() << " starting\n";
        for (auto n = tasks_.get(); n; n = tasks_.get()) results_.put(Result(name(), *n, *n * *n));
    }

    // The members a spawn or forkserver child needs (Python pickles the whole object).
    template <class Ar>
    void serialize(Ar& ar) {
        ar(label_, tasks_, results_);
    }

private:
    std::string label_;
    mp::Queue<std::optional<int>> tasks_;
    mp::Queue<Result> results_;
};

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: process_subclass spawn

    mp::Queue<std::optional<int>> tasks;
    mp::Queue<Result> results;
    std::vector<Worker> workers;
    for (int i = 0; i < 2; ++i) workers.emplace_back("worker " + std::to_string(i), tasks, results);
    for (auto& w : workers) w.start();
    for (int n = 1; n <= 6; ++n) tasks.put(n);
    for (std::size_t i = 0; i < workers.size(); ++i) tasks.put(std::nullopt);  // one None per worker

    std::vector<Result> got;
    for (int i = 0; i < 6; ++i) got.push_back(results.get(10s));
    bool ok = true;
    for (auto& w : workers) ok = w.join(10s) && w.exitcode() == 0 && ok;
    std::sort(got.begin(), got.end(), [](const Result& a, const Result& b) { return std::get<1>(a) < std::get<1>(b); });
    for (const auto& [name, n, square] : got) {
        std::cout << n << " * " << n << " = " << square << '\n';  // which worker did it varies
        ok = ok && square == n * n && (name == workers[0].name() || name == workers[1].name());
    }
    for (auto& w : workers) std::cout << w.name() << " exit code " << w.exitcode().value_or(-1) << '\n';  // Worker-1 0

    if (!ok) std::cout << "WRONG: expected 1..6 squared by the two workers, both exiting with 0\n";
    return ok ? 0 : 1;
}
