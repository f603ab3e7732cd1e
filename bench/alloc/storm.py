#!/usr/bin/env python3
"""One cold storm: start a fresh imgcdn (variant), warm up, wrk for DUR s at CONC, idle IDLE s.
Prints one JSON line. Usage: storm.py VARIANT CONC [DUR] [IDLE]"""
import json, os, resource, subprocess, sys, threading, time, urllib.request

BINS = "/work/target-alloc/bins"
TUNE = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
# variant -> (binary dir, extra env)
VARIANTS = {
    "glibc": ("glibc", {}),
    "glibc-tuned": ("glibc", {"GLIBC_TUNABLES": TUNE}),
    "mimalloc": ("mimalloc", {}),
    "mimalloc-override": ("mimalloc-override", {}),
    "jemalloc": ("jemalloc", {}),
    "jemalloc-bg": ("jemalloc", {"_RJEM_MALLOC_CONF": "background_thread:true"}),
    "jemalloc-unprefixed": ("jemalloc-unprefixed", {}),
    "jemalloc-ctl": ("jemalloc-ctl", {}),  # background_thread::write(true) in main()
    "jemalloc-unprefixed-bg": ("jemalloc-unprefixed", {"MALLOC_CONF": "background_thread:true"}),
}
TCK = os.sysconf("SC_CLK_TCK")
PORT = 18431
ORIGIN = "http://127.0.0.1:9000/public/"

def host_ticks():
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:]))
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal

def proc_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read().rsplit(")", 1)[1].split()
    return int(s[11]) + int(s[12])  # utime stime

def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])

def pids_of(pidfile):
    try:
        return [int(x) for x in open(pidfile).read().split()]
    except OSError:
        return []

def get(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()

def main():
    variant, conc = sys.argv[1], int(sys.argv[2])
    dur = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    idle = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    bindir, extra = VARIANTS[variant]
    env = dict(os.environ, **extra)
    env.update({
        "IMGCDN_SOURCE__BASE": ORIGIN,
        "IMGCDN_SOURCE__ALLOW_NETWORKS": '["127.0.0.0/8"]',
        "IMGCDN_CACHE__MEMORY_MB": "64",
        "IMGCDN_CACHE__DISK_MB": "0",
        "IMGCDN_CACHE__DIR": "/tmp/imgcdn-alloc-cache",
        "RUST_LOG": "warn",
    })
    qw0 = time.time()
    while time.time() - qw0 < float(os.environ.get("QUIET_WAIT", "120")):
        a = host_ticks(); time.sleep(2); b = host_ticks()
        if (b - a) / TCK / 2 < 0.3: break
    quiet_wait = round(time.time() - qw0, 1)
    log = open(f"/work/target-alloc/exp/server-{variant}-{conc}.log", "w")
    srv = subprocess.Popen([f"{BINS}/{bindir}/imgcdn", "--config", "/work/wt-alloc/config/default.toml",
                            "serve", "--listen", f"127.0.0.1:{PORT}"], env=env, stdout=log, stderr=log,
                           cwd="/tmp")
    pid = srv.pid
    try:
        for _ in range(100):
            try:
                get(f"http://127.0.0.1:{PORT}/health", 2); break
            except Exception:
                time.sleep(0.1)
        for f in ("photo-5120x2880.jpg", "art-3840x2160.jpg", "art-5640x3172.jpg"):
            st, body = get(f"http://127.0.0.1:{PORT}/img/w_100,q_80/{f}")
            assert st == 200, st
        rss_start = status_kb(pid, "VmRSS")
        nginx = pids_of("/tmp/imgcdn-lab/run/origin.pid")
        def nginx_ticks():
            t = 0
            for p in nginx:
                try:
                    t += proc_ticks(p)
                    for c in open(f"/proc/{p}/task/{p}/children").read().split():
                        t += proc_ticks(int(c))
                except OSError:
                    pass
            return t
        samples = []
        stop = threading.Event()
        def sampler():
            while not stop.is_set():
                try: samples.append(status_kb(pid, "VmRSS"))
                except Exception: pass
                time.sleep(0.5)
        th = threading.Thread(target=sampler); th.start()
        h0, s0, n0, t0 = host_ticks(), proc_ticks(pid), nginx_ticks(), time.time()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(["wrk", "-t2", f"-c{conc}", f"-d{dur}s", "--timeout", "120s",
                              "-s", "/work/target-alloc/exp/storm.lua", f"http://127.0.0.1:{PORT}",
                              "--", "", "2"], capture_output=True, text=True).stdout
        t1, h1, s1, n1 = time.time(), host_ticks(), proc_ticks(pid), nginx_ticks()
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        stop.set(); th.join()
        rss_end = status_kb(pid, "VmRSS")
        # drain: requests still queued in the server when wrk stopped
        d0 = time.time()
        while time.time() - d0 < 180:
            a = proc_ticks(pid); time.sleep(1); b = proc_ticks(pid)
            if (b - a) / TCK < 0.05: break
        drain_s = time.time() - d0
        hwm, rss_drained = status_kb(pid, "VmHWM"), status_kb(pid, "VmRSS")
        ih0, is0 = host_ticks(), proc_ticks(pid)
        rss_idle = []
        for _ in range(idle):
            time.sleep(1); rss_idle.append(status_kb(pid, "VmRSS"))
        ih1, is1 = host_ticks(), proc_ticks(pid)
        res = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
        wall = t1 - t0
        wrk_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        srv_s = (s1 - s0) / TCK
        host_s = (h1 - h0) / TCK
        ngx_s = (n1 - n0) / TCK
        ok = res["requests"] - res["bad"]
        print(json.dumps({
            "variant": variant, "conc": conc, "quiet_wait_s": quiet_wait, "dur": dur, "rps": round(ok / res["secs"], 3),
            "requests": res["requests"], "bad": res["bad"], "timeouts": res["timeouts"], "sockerr": res["sockerr"],
            "p50_ms": res["p50_ms"], "p99_ms": res["p99_ms"],
            "cpu_ms_per_req": round(srv_s * 1000 / max(ok, 1), 1),
            "server_cores": round(srv_s / wall, 2), "wrk_cores": round(wrk_s / wall, 3),
            "origin_cores": round(ngx_s / wall, 3),
            "others_cores": round((host_s - srv_s - wrk_s - ngx_s) / wall, 3),
            "rss_start_mb": round(rss_start / 1024, 1), "peak_hwm_mb": round(hwm / 1024, 1),
            "max_sampled_mb": round(max(samples) / 1024, 1) if samples else None,
            "rss_end_mb": round(rss_end / 1024, 1), "drain_s": round(drain_s, 1),
            "rss_drained_mb": round(rss_drained / 1024, 1), "rss_idle10_mb": round(rss_idle[-1] / 1024, 1),
            "idle_server_cores": round((is1 - is0) / TCK / idle, 3),
            "idle_others_cores": round(((ih1 - ih0) - (is1 - is0)) / TCK / idle, 3),
        }), flush=True)
    finally:
        srv.terminate()
        try: srv.wait(10)
        except subprocess.TimeoutExpired: srv.kill()

main()
