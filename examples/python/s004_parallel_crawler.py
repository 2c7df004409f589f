# Seed 004 (web crawler): crawl(url) returns requests.get(url).text, mapped over three URLs by
# Pool(processes=5). There is no network here: the pages are files written to a temporary
# directory, the URLs are file:// URLs, and urllib reads them in the workers.
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
from multiprocessing import Pool
from urllib.error import URLError
from urllib.request import urlopen


def crawl(url):
    with urlopen(url) as response:
        text = response.read().decode()
    return {"url": url, "bytes": len(text), "words": len(text.split()), "title": text.split("\n", 1)[0]}


if __name__ == '__main__':
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])

    site = tempfile.mkdtemp(prefix="mp_crawl_")
    urls = []
    for i in range(1, 4):
        with open(os.path.join(site, str(i)), "w") as page:
            page.write(f"Example page {i}\n" + "lorem ipsum\n" * (10 * i))
        urls.append("file://" + os.path.join(site, str(i)))

    ok = True
    with Pool(processes=5) as pool:
        results = pool.map(crawl, urls)
        for i, p in enumerate(results):
            print(f"page {i + 1}: '{p['title']}', {p['bytes']} bytes, {p['words']} words")
            ok = ok and p["url"] == urls[i] and p["words"] == 3 + 20 * (i + 1)
        try:
            pool.apply(crawl, ("file://" + os.path.join(site, "4"),))
            ok = False
        except URLError as e:
            print(f"page 4: URLError: {e.reason.strerror}")
    shutil.rmtree(site)
    if not ok:
        print("WRONG: unexpected pages")
    sys.exit(0 if ok else 1)
