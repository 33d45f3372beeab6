"""The harness's CPython side: runs one scenario row with concurrent.futures.

Reads one JSON object on stdin (the workload, the executor kind, max_workers, chunksize, warm-up,
repeats, timeout, the blob server's URL, and for azure-blobs each blob's SAS URL) and prints one JSON object: the timed runs' durations
in seconds and the last run's per-task results, in input order, as [tag, value] pairs
("ok", value) / ("panic", message) / ("error", message). The Rust harness checks them against
the scenario's expectations exactly as it checks its own backends.

The tasks are the same as the Rust workloads': is_prime by trial division over 6k +- 1, a no-op
echo, a faulty task that raises (Panic stands in for a Rust panic) or fails by its index, and a
blocking HTTP download whose size and CRC-32 come back (for azure-blobs a plain GET of the blob's
SAS URL: the SAS in the query is the authentication, so no Azure SDK for Python is needed).
"""

import concurrent.futures as cf
import json
import sys
import time
import urllib.request
import zlib


def is_prime(n):
    if n < 4:
        return n >= 2
    if n % 2 == 0 or n % 3 == 0:
        return False
    i = 5
    while i * i <= n:
        if n % i == 0 or n % (i + 2) == 0:
            return False
        i += 6
    return True


def noop(i):
    return i


class Panic(Exception):
    """What a Rust task's panic is in this port."""


def faulty(args):
    index, panic_every, error_every = args
    is_prime(1_000_003 + index)
    if panic_every and index % panic_every == 0:
        raise Panic(f"task {index} panicked on purpose (every {panic_every}th panics)")
    if error_every and index % error_every == 0:
        raise ValueError(f"task {index} failed on purpose (every {error_every}th fails)")
    return index


def fetch(args):
    url, index, size = args
    with urllib.request.urlopen(f"{url}/blob/{index}?size={size}", timeout=60) as response:
        body = response.read()
    return [len(body), zlib.crc32(body)]


def fetch_url(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    return [len(body), zlib.crc32(body)]


def tag(exc):
    return ["panic" if isinstance(exc, Panic) else "error", f"{type(exc).__name__}: {exc}"]


def tasks_of(workload, blob_url, azure_urls):
    kind, params = next(iter(workload.items()))
    if kind == "primes":
        return is_prime, list(params["numbers"]), True
    if kind == "prime-range":
        start = params["start"]
        return is_prime, range(start, start + params["count"]), True
    if kind == "noop":
        return noop, range(params["tasks"]), False
    if kind == "faults":
        pe, ee = params.get("panic_every", 0), params.get("error_every", 0)
        return faulty, [(i, pe, ee) for i in range(1, params["tasks"] + 1)], False
    if kind == "io-fanout":
        size = params["size_kib"] * 1024
        return fetch, [(blob_url, i, size) for i in range(params["blobs"])], True
    if kind == "azure-blobs":
        if azure_urls is None:
            raise SystemExit("azure-blobs needs the blobs' URLs, and none were given")
        return fetch_url, list(azure_urls), True
    raise SystemExit(f"unknown workload kind {kind!r}")


def run_once(executor, fn, items, uses_map, chunksize, timeout):
    """One timed run: every task submitted, every result collected."""
    out = []
    start = time.perf_counter()
    if uses_map:
        # Python's map stops at the first failure; these workloads do not fail.
        try:
            for value in executor.map(fn, items, timeout=timeout, chunksize=chunksize):
                out.append(["ok", value])
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            out.append(tag(exc))
    else:
        # submit + result per task: one failure must not lose the other results.
        futures = [executor.submit(fn, item) for item in items]
        deadline = start + timeout
        for f in futures:
            try:
                out.append(["ok", f.result(timeout=max(0.0, deadline - time.perf_counter()))])
            except Exception as exc:  # noqa: BLE001
                out.append(tag(exc))
    return time.perf_counter() - start, out


def main():
    config = json.load(sys.stdin)
    fn, items, uses_map = tasks_of(
        config["workload"], config.get("blob_url"), config.get("azure_urls")
    )
    kind = config["executor"]
    pool = cf.ThreadPoolExecutor if kind == "threads" else cf.ProcessPoolExecutor
    times, last = [], []
    with pool(max_workers=config["max_workers"]) as executor:
        for i in range(config["warmup"] + config["repeats"]):
            elapsed, last = run_once(
                executor, fn, items, uses_map, config["chunksize"], config["timeout_s"]
            )
            if i >= config["warmup"]:
                times.append(elapsed)
    json.dump({"times": times, "items": last, "python": sys.version.split()[0]}, sys.stdout)


if __name__ == "__main__":
    main()
