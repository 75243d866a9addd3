#!/bin/bash
# alternated A/B: before = ea30104 tree on the old build (harness2), after = wt-head on the new build (harness)
for r in 1 2 3 4 5; do
  for what in ls lineage; do
    if [ $((r % 2)) -eq 1 ]; then order="old new"; else order="new old"; fi
    for v in $order; do
      if [ $v = old ]; then HTAG=old HCACHE=/tmp/head/client-old /work/venv/bin/python run2.py /tmp/head/before $what 1;
      else HCACHE=/tmp/head/client-new /work/venv/bin/python run2.py /work/wt-head $what 1; fi
    done
  done
done
