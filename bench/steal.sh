# Sourced by benchmarks that compare one core against two: the share of the CPU time the
# hypervisor took away (the `steal` of /proc/stat) while a command ran. On a shared virtual
# machine a neighbour's load steals from two busy cores far more than from one, so a ratio
# measured under steal says little; the benchmarks print it beside each run and summarize
# the runs it left alone (under STEAL_QUIET percent, 2 by default) apart.
STEAL_QUIET="${STEAL_QUIET:-2}"

# cpu_ticks: "steal total" of /proc/stat's cpu line (0 0 where there is none)
cpu_ticks() {
  awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print $9 + 0, t; found = 1 }
       END { if (!found) print 0, 0 }' /proc/stat 2>/dev/null || echo 0 0
}

# steal_since "STEAL TOTAL": the percentage of CPU time stolen since that snapshot
steal_since() {
  local now
  now=$(cpu_ticks)
  awk -v a="$1" -v b="$now" 'BEGIN { split(a, x, " "); split(b, y, " ");
    d = y[2] - x[2]; printf "%.1f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}

# quiet PERCENT: whether a run's steal stayed under STEAL_QUIET
quiet() { awk -v s="$1" -v q="$STEAL_QUIET" 'BEGIN { exit !(s < q) }'; }
