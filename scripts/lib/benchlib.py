"""What the benchmark scripts (bench, bench-pipeline, bench-tail) share: loopback ports, a
local topology started and stopped through `lapstat up`, CPU time from /proc, nearest rank."""
import json, math, os, signal, socket, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TICK = os.sysconf("SC_CLK_TCK")


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_topology(data_dir, writers, shims):
    """A topology on free loopback ports: the query service, one fan-in, the given writers
    and shims. Returns it and the query service's HOST:PORT."""
    http = f"127.0.0.1:{free_port()}"
    return {"dataDir": data_dir, "query": {"http": http},
            "fanins": [{"name": "fanin-1", "frontend": f"tcp://127.0.0.1:{free_port()}",
                        "backend": f"tcp://127.0.0.1:{free_port()}"}],
            "writers": writers, "shims": shims}, http


def start_up(binary, directory, topology):
    """Writes `topology.json` in `directory` and starts `lapstat up` on it, logging to up.log there."""
    path = os.path.join(directory, "topology.json")
    with open(path, "w") as f:
        json.dump(topology, f)
    with open(os.path.join(directory, "up.log"), "w") as log:   # the child keeps its own copy
        return subprocess.Popen([binary, "up", "--topology", path], stdout=log, stderr=subprocess.STDOUT)


def stop_process(p, timeout=60):
    """SIGINT (a clean stop), then SIGKILL if it does not end within `timeout` s."""
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cpu_seconds(pids):
    """utime+stime of each process (all threads) plus cutime+cstime (its reaped children)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / TICK
        except (OSError, IndexError):
            pass
    return total


def nearest_rank(sorted_vals, q):
    """The smallest value whose rank reaches ceil(q * n) (at least the first)."""
    return sorted_vals[max(1, math.ceil(q * len(sorted_vals))) - 1]
