// tour: a parallel crawler: Pool(5).map(crawl, urls) over local file:// pages
// Seed 004 (web crawler): crawl(url) returns requests.get(url).text, mapped over three URLs by
// Pool(processes=5). There is no network here: the pages are files written to a temporary
// directory, the URLs are file:// URLs, and crawl() reads them in the workers.
#include <stdlib.h>  // mkdtemp

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <multiprocessing.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mp = multiprocessing;
namespace fs = std::filesystem;

// What crawl() returns. An aggregate of picklable members is picklable with no code (Boost.PFR);
// in Python it would be a dict or a tuple.
struct Page {
    std::string url;
    std::size_t bytes;
    std::size_t words;
    std::string title;  // the first line
};

Page crawl(std::string url) {
    const std::string scheme = "file://";
    if (!url.starts_with(scheme)) throw std::invalid_argument("crawl: not a file:// URL: " + url);
    std::ifstream in(url.substr(scheme.size()), std::ios::binary);
    if (!in) throw std::runtime_error("404 Not Found: " + fs::path(url).filename().string());
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::istringstream ws(text);
    auto words = static_cast<std::size_t>(
        std::distance(std::istream_iterator<std::string>(ws), std::istream_iterator<std::string>()));
    return {url, text.size(), words, text.substr(0, text.find('\n'))};
}

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1) mp::set_start_method(argv[1]);  // try: s004_parallel_crawler spawn
    // The "site": page i is a title line and 20 * i words.
    std::string tmpl = (fs::temp_directory_path() / "mp_crawl_XXXXXX").string();
    const char* made = ::mkdtemp(tmpl.data());
    if (!made) return std::perror("mkdtemp"), 1;
    const fs::path site = made;
    std::vector<std::string> urls;
    for (int i = 1; i <= 3; ++i) {
        std::ofstream page(site / std::to_string(i));
        page << "Example page " << i << '\n';
        for (int w = 0; w < 10 * i; ++w) page << "lorem ipsum\n";
        urls.push_back("file://" + (site / std::to_string(i)).string());
    }
    bool ok = true;
    {
        mp::Pool pool(5);  // Pool(processes=5): more workers than CPUs suits I/O-bound tasks
        std::vector<Page> results = pool.map(crawl, urls);
        for (std::size_t i = 0; i < results.size(); ++i) {
            const Page& p = results[i];
            std::cout << "page " << i + 1 << ": '" << p.title << "', " << p.bytes << " bytes, " << p.words
                      << " words\n";
            ok = ok && p.url == urls[i] && p.words == 3 + 20 * (i + 1);
        }
        // A page that is not there: the worker's exception comes back from apply() in the parent
        // (Python's urlopen raises URLError).
        try {
            (void)pool.apply(crawl, "file://" + (site / "4").string());
            ok = false;
        } catch (const std::runtime_error& e) {
            std::cout << "page 4: std::runtime_error: " << e.what() << '\n';
        }
    }
    fs::remove_all(site);
    if (!ok) std::cout << "WRONG: unexpected pages\n";
    return ok ? 0 : 1;
}
