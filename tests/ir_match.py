"""A tiny, obviously-correct matcher over the IR regex AST (for tests only).

``ends(regex, text, i)`` is the set of positions j such that ``text[i:j]`` is in the language; everything
else is built on it. Memoized per (node, position); fine for the short strings tests use.
"""

from __future__ import annotations

import random

from gdecode import ir


class _Matcher:
    def __init__(self, text: str) -> None:
        self.text = text
        self.memo: dict = {}

    def ends(self, node, i: int) -> frozenset:
        key = (id(node), i)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        res = self._ends(node, i)
        self.memo[key] = res
        return res

    def _ends(self, node, i: int) -> frozenset:
        t = self.text
        if isinstance(node, ir.Chars):
            if i < len(t):
                cp = ord(t[i])
                for lo, hi in node.ranges:
                    if lo <= cp <= hi:
                        return frozenset((i + 1,))
            return frozenset()
        if isinstance(node, ir.Seq):
            cur = {i}
            for item in node.items:
                nxt: set = set()
                for p in cur:
                    nxt |= self.ends(item, p)
                cur = nxt
                if not cur:
                    break
            return frozenset(cur)
        if isinstance(node, ir.Alt):
            out: set = set()
            for item in node.items:
                out |= self.ends(item, i)
            return frozenset(out)
        if isinstance(node, ir.Repeat):
            result = {i} if node.min == 0 else set()
            frontier = {i}
            visited = {i}
            count = 0
            while frontier and (node.max is None or count < node.max):
                count += 1
                nxt: set = set()
                for p in frontier:
                    nxt |= self.ends(node.item, p)
                if count >= node.min:
                    result |= nxt
                    if node.max is None:
                        nxt -= visited
                        visited |= nxt
                if count > node.min + len(t) + 1 and node.max is not None:
                    # positions cannot change any more once every count past min was seen
                    result |= nxt
                    break
                frontier = nxt
            return frozenset(result)
        if isinstance(node, ir.Minus):
            return frozenset(j for j in self.ends(node.item, i) if t[i:j] not in node.words)
        raise TypeError(f"not an IR regex node: {node!r}")


def ends(regex, text: str, i: int = 0) -> frozenset:
    return _Matcher(text).ends(regex, i)


def fullmatch(regex, text: str) -> bool:
    return len(text) in ends(regex, text)


def prefixes(regex, text: str) -> frozenset:
    """Lengths of the prefixes of ``text`` in the language."""
    return ends(regex, text)


def sample(regex, rng: random.Random, max_repeat: int = 3, depth: int = 0) -> str | None:
    """A random string of the language (None if the walk hit an empty set)."""
    if depth > 60:
        return None
    if isinstance(regex, ir.Chars):
        if not regex.ranges:
            return None
        lo, hi = rng.choice(regex.ranges)
        if rng.random() < 0.5:
            cp = rng.choice((lo, hi))
        else:
            cp = rng.randint(lo, hi)
        return chr(cp)
    if isinstance(regex, ir.Seq):
        parts = []
        for item in regex.items:
            s = sample(item, rng, max_repeat, depth + 1)
            if s is None:
                return None
            parts.append(s)
        return "".join(parts)
    if isinstance(regex, ir.Alt):
        if not regex.items:
            return None
        return sample(rng.choice(regex.items), rng, max_repeat, depth + 1)
    if isinstance(regex, ir.Repeat):
        hi = regex.max if regex.max is not None else regex.min + max_repeat
        n = rng.randint(regex.min, min(hi, regex.min + max_repeat))
        parts = []
        for _ in range(n):
            s = sample(regex.item, rng, max_repeat, depth + 1)
            if s is None:
                return None
            parts.append(s)
        return "".join(parts)
    if isinstance(regex, ir.Minus):  # a few tries; None if each one was an excluded word
        for _ in range(8):
            s = sample(regex.item, rng, max_repeat, depth + 1)
            if s is not None and s not in regex.words:
                return s
        return None
    raise TypeError(regex)
