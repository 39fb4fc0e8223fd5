"""Benchmark the cost of a password reset on this machine (not a test).

Measures scrypt at issue 12's parameters (n=2**17, r=8, p=1, 128 MiB) and at the box's default
since issue 11, the OWASP Password Storage Cheat Sheet's equivalent minimum n=2**14, r=8, p=5
(16 MiB): one hash alone, then whole resets through the store (lookup with its limits, reset
with its hash made on demand, update and audit row in one transaction; the box itself hashes
ahead) on a temporary SQLite file, one at a time and ``--parallel`` at once (calls share the
box's cores). Prints one line per figure::

    PYTHONPATH=. .venv/bin/python scripts/bench_reset.py --n 10 --parallel 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from assistant.accounts.limits import LimitSettings
from assistant.accounts.passwords import DEFAULT_PARAMS, ScryptParams, hash_password
from assistant.accounts.store import SqlAccountStore
from assistant.core.ports import LookupVerdict

OLD = ScryptParams(n=2**17, r=8, p=1)  # issue 12's choice, 128 MiB a hash


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(values) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms"


def bench_hash(params: ScryptParams, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        hash_password("12345678", params)
        out.append(time.perf_counter() - t0)
    return out


def bench_resets(
    params: ScryptParams, n: int, parallel: int, folder: Path
) -> tuple[list[float], float]:
    url = f"sqlite:///{folder / f'bench_{params.n}_{parallel}.sqlite3'}"
    # generous limits: the benchmark resets many accounts from one process
    limits = LimitSettings(phone_lookups=10**6, code_lookups=10**6, phone_issues=10**6)
    with SqlAccountStore(url, scrypt_params=params, limits=limits) as store:
        store.create_schema()
        pairs = [(f"{6000000000 + k}", f"09{k:08d}") for k in range(n)]
        for code, phone in pairs:
            store.add_account(code, phone)

        def reset(pair: tuple[str, str]) -> float:
            code, phone = pair
            t0 = time.perf_counter()
            assert store.lookup(phone, code) is LookupVerdict.MATCH
            assert store.reset_password(phone, code, call_id="bench", caller_source="none")
            return time.perf_counter() - t0

        started = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            times = list(pool.map(reset, pairs))
        wall = time.perf_counter() - started
    return times, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10, help="hashes and resets per setting")
    parser.add_argument("--parallel", type=int, default=2, help="resets at once (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in (("old n=2^17", OLD), ("OWASP n=2^14, p=5 (default)", DEFAULT_PARAMS)):
            mib = params.memory / 2**20
            print(f"scrypt {name}, r={params.r}, p={params.p}, {mib:.0f} MiB")
            print(f"  one hash:             {_ms(bench_hash(params, args.n))}  (n={args.n})")
            serial, _ = bench_resets(params, args.n, 1, Path(tmp))
            print(f"  reset, one at a time: {_ms(serial)}  (n={args.n})")
            together, wall = bench_resets(params, args.n, args.parallel, Path(tmp))
            rate = args.n / wall
            print(
                f"  reset, {args.parallel} at once:     {_ms(together)}  "
                f"({rate:.2f} resets/s on this machine)"
            )


if __name__ == "__main__":
    main()
