// tour: Managers: a dict and a list shared through a server process; a registered type; a TCP manager
// CPython docs, "Server process" (a Manager's dict and list changed by a child), "Customized
// managers" (mp_newtype.py: BaseManager.register('Maths', MathsClass)) and "Using a remote
// manager" (a manager on TCP with its own authkey, which a client connects to).
#include <iostream>
#include <multiprocessing.hpp>
#include <string>
#include <vector>

namespace mp = multiprocessing;

void f(mp::DictProxy<std::string, std::string> d, mp::ListProxy<int> l) {
    d.set("1", "1");
    d.set("2", "2");
    d.set("0.25", "None");
    l.reverse();
}

class MathsClass {
public:
    int add(int x, int y) const { return x + y; }
    int mul(int x, int y) const { return x * y; }
};

class MyManager : public mp::BaseManager {
public:
    using BaseManager::BaseManager;
};

int main() {
    mp::freeze_support();
    MyManager::register_type<MathsClass>("Maths");  // in every process, before start()

    {
        auto manager = mp::Manager();  // Python: with Manager() as manager:
        auto d = manager.dict<std::string, std::string>();
        auto l = manager.list<int>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
        mp::Process p(f, d, l);
        p.start();
        p.join();
        std::cout << '{';
        bool first = true;
        for (const auto& [k, v] : d.items()) {
            std::cout << (first ? "" : ", ") << k << ": " << v;
            first = false;
        }
        std::cout << "}\n[";
        auto items = l.copy();
        for (std::size_t i = 0; i < items.size(); ++i) std::cout << (i ? ", " : "") << items[i];
        std::cout << "]\n";
    }

    {
        MyManager manager;  // Python: with MyManager() as manager:
        manager.start();
        auto maths = manager.make<MathsClass>("Maths");
        std::cout << maths.call(&MathsClass::add, 4, 3) << '\n';  // prints 7
        std::cout << maths.call(&MathsClass::mul, 7, 8) << '\n';  // prints 56
    }

    {
        // The docs' remote manager listens on ('', 50000) with authkey b'abracadabra'; port 0
        // here takes a free port, and an empty host is 127.0.0.1.
        mp::SyncManager server(mp::TcpAddress{"", 0}, "abracadabra");
        server.start();
        auto queue = server.Queue<std::string>();
        mp::SyncManager client(server.address(), "abracadabra");  // elsewhere: m.connect()
        client.connect();
        queue.put("hello");
        std::cout << "the remote queue holds " << queue.qsize() << " item: " << queue.get() << '\n';
    }
    return 0;
}
