#!/usr/bin/env python3
"""Fill (default) or check (--check) the Rust excerpts of docs/CONNECTION_POOLING.md.

Each excerpt is introduced by `<!-- excerpt: examples/FILE.rs#REGION -->` and followed
by a ```rust block: its body is the region between `// [guide:REGION]` and
`// [/guide:REGION]` of the file, dedented."""
import re, sys, textwrap, pathlib
root = pathlib.Path(sys.argv[-1] if len(sys.argv) > 1 and not sys.argv[-1].startswith('--') else '.')
doc = root / 'docs/CONNECTION_POOLING.md'
text = doc.read_text()
def region(path, name):
    src = (root / path).read_text().splitlines()
    start = [i for i, l in enumerate(src) if l.strip() == f'// [guide:{name}]']
    end = [i for i, l in enumerate(src) if l.strip() == f'// [/guide:{name}]']
    assert len(start) == 1 and len(end) == 1, (path, name)
    return textwrap.dedent('\n'.join(src[start[0] + 1:end[0]])).strip('\n')
pat = re.compile(r'(<!-- excerpt: (\S+?)#(\w+) -->\n(?:[^\n]*\n)*?```rust\n)(.*?)(\n```)', re.S)
bad = []
def fill(m):
    want = region(m.group(2), m.group(3))
    if m.group(4) != want:
        bad.append(f'{m.group(2)}#{m.group(3)}')
    return m.group(1) + want + m.group(5)
new = pat.sub(fill, text)
n = len(pat.findall(text))
rust_blocks = text.count('```rust')
if rust_blocks != n:
    print(f'{rust_blocks - n} rust block(s) without an excerpt marker'); sys.exit(1)
if '--check' in sys.argv:
    if bad:
        print('stale excerpts:', ', '.join(bad)); sys.exit(1)
    print(f'{n} excerpts up to date')
else:
    doc.write_text(new)
    print(f'{n} excerpts, {len(bad)} updated')
