import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for what in ("ls", "lineage"):
    for tree in ("/tmp/head/before", "/work/wt-head"):
        rs = [r for r in rows if r["what"] == what and r["tree"] == tree]
        if not rs: continue
        f = lambda k: (round(st.median(r[k] for r in rs), 3), round(min(r[k] for r in rs), 3), round(max(r[k] for r in rs), 3))
        print(f"{what:8} {'before' if 'before' in tree else 'after ':6} n={len(rs)} command_s med/min/max={f('s')} main_cpu={f('main_cpu')} proc_cpu={f('cpu')} wall={f('wall')} reqs={sorted(set(r['n_req'] for r in rs))} rss={f('rss_mib')} load={[r['load'] for r in rs]}")
