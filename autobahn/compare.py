"""Compare an Autobahn|Testsuite report with the expected results.

usage: compare.py INDEX_JSON EXPECTED_JSON CASE_PATTERNS EXCLUDED_PATTERNS

Every case of the report must have the expected `behavior` and
`behaviorClose`; every expected case selected by the patterns must be in the
report. Prints the counts and each mismatch; exits 1 on any mismatch.
"""
import collections
import fnmatch
import json
import sys


def case_key(case_id):
    return [int(part) for part in case_id.split('.')]


def selected(case_id, patterns, excluded):
    return any(fnmatch.fnmatchcase(case_id, p) for p in patterns) and not any(
        fnmatch.fnmatchcase(case_id, p) for p in excluded)


def main():
    index_path, expected_path, patterns, excluded = sys.argv[1:5]
    patterns = [p.strip() for p in patterns.split(',') if p.strip()]
    excluded = [p.strip() for p in excluded.split(',') if p.strip()]
    with open(index_path) as f:
        index = json.load(f)
    with open(expected_path) as f:
        expected = json.load(f)['cases']
    if len(index) != 1:
        sys.exit('expected one agent in %s, found %d' % (index_path, len(index)))
    (agent, results), = index.items()

    counts = collections.Counter(r['behavior'] for r in results.values())
    close_counts = collections.Counter(r['behaviorClose'] for r in results.values())
    mismatches = []
    for case_id in sorted(results, key=case_key):
        got = results[case_id]
        want = expected.get(case_id)
        if want is None:
            mismatches.append('%s: not in the expected results (behavior %s, close %s)'
                              % (case_id, got['behavior'], got['behaviorClose']))
            continue
        for field in ('behavior', 'behaviorClose'):
            if got[field] != want[field]:
                mismatches.append('%s: %s is %s, expected %s (see %s)'
                                  % (case_id, field, got[field], want[field], got.get('reportfile')))
    for case_id in sorted(expected, key=case_key):
        if selected(case_id, patterns, excluded) and case_id not in results:
            mismatches.append('%s: expected but not run' % case_id)

    print('%s: %d cases' % (agent, len(results)))
    for name in ('OK', 'NON-STRICT', 'FAILED', 'INFORMATIONAL', 'UNIMPLEMENTED'):
        print('  %-14s %d' % (name, counts.pop(name, 0)))
    for name, n in sorted(counts.items()):
        print('  %-14s %d' % (name, n))
    print('  close behaviour: %s' % ', '.join('%s %d' % kv for kv in sorted(close_counts.items())))
    if mismatches:
        print('%d mismatches with the expected results:' % len(mismatches))
        for line in mismatches:
            print('  ' + line)
        return 1
    print('all cases as expected')
    return 0


if __name__ == '__main__':
    sys.exit(main())
