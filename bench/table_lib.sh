# shellcheck shell=bash
# Shared by the bench scripts that read nccl-tests-style tables.

# medians FILE...: per message size, the median over the files (rounds) of the
# out-of-place time (us) and busbw, and the check column: "size time busbw check".
# Today's nccl-tests and deepops-bench print 13 columns (a root column; time
# in us; #wrong); nccl-tests releases before 2.0 print 12 (time in ms; the
# largest error instead of #wrong).
medians() {
  awk '!/^#/ && $1 ~ /^[0-9]+$/ && NF == 13 { print $1, $6, $8, $9 }
       !/^#/ && $1 ~ /^[0-9]+$/ && NF == 12 { print $1, $5 * 1000, $7, ($8 == "N/A" ? "-" : $8) }' "$@" |
    sort -k1,1n -k2,2g |
    awk '{ n[$1]++; t[$1, n[$1]] = $2; b[$1, n[$1]] = $3; w[$1] = $4 }
         END { for (s in n) { m = int((n[s] + 1) / 2)
                              print s, t[s, m], b[s, m], w[s] } }' |
    sort -k1,1n
}
