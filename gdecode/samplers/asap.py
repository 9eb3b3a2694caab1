"""ASAp: adaptive sampling with approximate expected futures (Park et al., NeurIPS 2024, grammar-aligned
decoding).

A persistent trie of sampled prefixes stores, per node, the model probability of its token given the parent
prefix (``raw``, from the *processed* distribution: the one actually sampled from) and the current
expected-future-grammaticality estimate ``c̃``. A node whose next-token distribution has been observed
(``z`` = allowed mass, set on the first visit) has ``c̃ = Σ_{t allowed} P(t)·c̃(child t)``, where children
never visited count as ``c̃ = 1``: we store only visited children and ``c̃ = z − Σ_visited raw·(1 − c̃)``.
Unobserved nodes and EOS leaves have ``c̃ = 1``; dead ends (no allowed token; at the last position of
``max_tokens`` only EOS is allowed) get ``c̃ = 0``. Each expansion is backed up to the root (incrementally).
Sampling draws ``t`` with probability ``∝ P(t)·c̃(child t)`` among allowed tokens. With an empty trie this is
plain grammar-constrained decoding; it converges to ``p(y)·1[y∈L] / P(L)``.

The trie serializes to JSON (:meth:`ASApTrie.to_json` / :meth:`ASApTrie.from_json`); reuse it across
samples and sessions for the same model, prompt, constraint and logits config.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gdecode.samplers.base import Constraint, LogitsConfig, Model, to_numpy


class ASApNode:
    __slots__ = ("raw", "z", "deficit", "c", "children")

    def __init__(self, raw: float = 1.0) -> None:
        self.raw = raw                 # P(token | parent prefix)
        self.z: float | None = None    # allowed mass of the next-token distribution (None: not observed)
        self.deficit = 0.0             # Σ_visited children raw·(1 − c̃)
        self.c = 1.0                   # c̃
        self.children: dict[int, ASApNode] = {}

    def recompute(self) -> None:
        self.c = 1.0 if self.z is None else max(0.0, self.z - self.deficit)


class ASApTrie:
    def __init__(self) -> None:
        self.root = ASApNode()

    def node(self, prefix: Sequence[int]) -> ASApNode | None:
        n = self.root
        for t in prefix:
            n = n.children.get(int(t))
            if n is None:
                return None
        return n

    def efg(self, prefix: Sequence[int]) -> float:
        """c̃ of ``prefix`` (1 if the prefix was never reached)."""
        n = self.node(prefix)
        return 1.0 if n is None else n.c

    def __len__(self) -> int:
        count, stack = 0, [self.root]
        while stack:
            n = stack.pop()
            count += 1
            stack.extend(n.children.values())
        return count

    # ---------------------------------------------------------------------------------- serialization
    def to_dict(self) -> dict:
        """Flat preorder list ``[parent index, token, raw, z]`` (root first: parent −1, token −1)."""
        rows = []
        stack = [(self.root, -1, -1)]
        while stack:
            n, parent, tok = stack.pop()
            idx = len(rows)
            rows.append([parent, tok, n.raw, n.z])
            for t, ch in n.children.items():
                stack.append((ch, idx, t))
        return {"format": "gdecode-asap-trie/1", "nodes": rows}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> ASApTrie:
        if d.get("format") != "gdecode-asap-trie/1":
            raise ValueError("not a gdecode ASAp trie")
        trie = cls()
        nodes: list[ASApNode] = []
        for parent, tok, raw, z in d["nodes"]:
            n = trie.root if parent < 0 else ASApNode(float(raw))
            n.z = None if z is None else float(z)
            if parent >= 0:
                nodes[parent].children[int(tok)] = n
            nodes.append(n)
        for n in reversed(nodes):          # children come after their parent in preorder
            n.deficit = sum(ch.raw * (1.0 - ch.c) for ch in n.children.values())
            n.recompute()
        return trie

    @classmethod
    def from_json(cls, s: str) -> ASApTrie:
        return cls.from_dict(json.loads(s))


def _backup(path: list[ASApNode]) -> None:
    """``path[-1]`` changed (z set): propagate the change of c̃ towards the root."""
    node = path[-1]
    old = node.c
    node.recompute()
    for i in range(len(path) - 2, -1, -1):
        delta = old - node.c
        if delta == 0.0:
            return
        parent = path[i]
        parent.deficit += node.raw * delta
        old = parent.c
        parent.recompute()
        node = parent


@dataclass
class ASApSample:
    tokens: list[int]        # EOS included when complete
    complete: bool           # False: dead end (the trie now knows it)


class ASAp:
    """``ASAp(model, constraint, max_tokens=...)``; call :meth:`sample` repeatedly (the trie persists)."""

    name = "asap"

    def __init__(self, model: Model, constraint: Constraint, *, max_tokens: int = 256,
                 logits_config: LogitsConfig | None = None, trie: ASApTrie | None = None,
                 seed: int | None = None) -> None:
        self.model = model
        self.constraint = constraint
        self.max_tokens = max_tokens
        self.logits_config = logits_config or LogitsConfig()
        self.trie = trie if trie is not None else ASApTrie()
        self.rng = np.random.default_rng(seed)
        self.eos = tuple(constraint.eos_token_ids)

    # ------------------------------------------------------------------------------------------ steps
    def _weights(self, node: ASApNode, prefix: Sequence[int], logp: np.ndarray,
                 c: Constraint) -> tuple[np.ndarray, np.ndarray]:
        """Observe the processed distribution ``logp`` at ``prefix`` (sets ``node.z``); returns
        (probabilities P, sampling weights P·c̃·1[allowed])."""
        p = np.exp(logp)
        if self.max_tokens - len(prefix) <= 1:
            mask = np.zeros(p.shape[0], dtype=bool)
            if c.is_complete():
                mask[list(self.eos)] = True
        else:
            mask = c.allowed_mask()
        if mask.shape[0] != p.shape[0]:            # logit width ≠ grammar vocab: extra ids are never allowed
            mask = np.pad(mask, (0, max(0, p.shape[0] - mask.shape[0])))[: p.shape[0]]
        w = np.where(mask, p, 0.0)
        if node.z is None:
            node.z = float(w.sum())
        for t, ch in node.children.items():
            w[t] *= ch.c
        return p, w

    def _step_weights(self, node: ASApNode, prefix: list[int], c: Constraint) -> tuple[np.ndarray, np.ndarray]:
        return self._weights(node, prefix, self.logits_config(to_numpy(self.model([prefix]))[0]), c)

    def _choose(self, path: list[ASApNode], prefix: Sequence[int], logp: np.ndarray, c: Constraint,
                forced: int | None, rng: np.random.Generator, greedy: bool = False) -> int:
        """One step at ``path[-1]`` (the node of ``prefix``): observe, back up, pick a token (−1: dead end,
        c̃ = 0 already backed up) and add its child node."""
        node = path[-1]
        first_visit = node.z is None
        p, w = self._weights(node, prefix, logp, c)
        if first_visit:
            _backup(path)
        if not float(w.sum()) > 0.0:
            return -1
        if forced is not None:
            if forced < 0:
                raise ValueError("forced sequence ended before EOS")
            t = int(forced)
            if not w[t] > 0:
                raise ValueError(f"token {t} is not allowed (or has c̃ = 0) after {list(prefix)}")
        elif greedy:
            t = int(np.argmax(w))
        else:
            with np.errstate(divide="ignore"):
                t = int(np.argmax(np.log(w) + rng.gumbel(size=w.shape[0])))
        if t not in node.children:
            node.children[t] = ASApNode(float(p[t]))
        return t

    def _walk(self, forced: Sequence[int] | None) -> ASApSample:
        path = [self.trie.root]
        c = self.constraint.fork()
        tokens: list[int] = []
        while True:
            f = None if forced is None else (forced[len(tokens)] if len(tokens) < len(forced) else -1)
            logp = self.logits_config(to_numpy(self.model([tokens]))[0])
            t = self._choose(path, tokens, logp, c, f, self.rng)
            if t < 0:
                return ASApSample(tokens, False)
            tokens.append(t)
            if t in self.eos:
                return ASApSample(tokens, True)
            c.advance(t)
            path.append(path[-1].children[t])

    def step(self, prefix: Sequence[int], logp: np.ndarray, constraint: Constraint,
             rng: np.random.Generator | None = None, greedy: bool = False) -> int:
        """One ASAp step driven from outside (a logits processor): ``prefix`` is what this sample generated so
        far (every token of it chosen by earlier ``step`` calls, so its trie path exists), ``logp`` the
        processed next-token log-probabilities there, ``constraint`` the grammar state after ``prefix``.
        Returns the chosen token, or −1 at a dead end (no allowed token; the trie records it)."""
        path = [self.trie.root]
        for t in prefix:
            nxt = path[-1].children.get(int(t))
            if nxt is None:
                raise ValueError(f"ASAp: prefix {list(prefix)} was not produced by this trie's samples")
            path.append(nxt)
        return self._choose(path, prefix, np.asarray(logp, dtype=np.float64), constraint, None,
                            rng if rng is not None else self.rng, greedy)

    def sample(self) -> ASApSample:
        """One sample; updates the trie."""
        with np.errstate(divide="ignore"):
            return self._walk(None)

    def observe(self, tokens: Sequence[int]) -> ASApSample:
        """Update the trie as if ``tokens`` (ending with EOS) had been sampled."""
        return self._walk(list(tokens))

    # ------------------------------------------------------------------------------------ inspection
    def next_token_probs(self, prefix: Sequence[int]) -> np.ndarray:
        """The current sampling distribution ``Q̃(·|prefix)`` (does not modify the trie)."""
        node = self.trie.node(prefix) or ASApNode()
        saved = node.z
        c = self.constraint.fork()
        for t in prefix:
            c.advance(int(t))
        _, w = self._step_weights(node, list(prefix), c)
        node.z = saved
        s = w.sum()
        return w / s if s > 0 else w

    def sequence_probability(self, tokens: Sequence[int]) -> float:
        """Probability that the next :meth:`sample` returns exactly ``tokens``."""
        prob = 1.0
        for i, t in enumerate(tokens):
            prob *= float(self.next_token_probs(tokens[:i])[int(t)])
            if prob == 0.0:
                return 0.0
        return prob

    def clone(self) -> ASAp:
        other = ASAp(self.model, self.constraint, max_tokens=self.max_tokens,
                     logits_config=self.logits_config, trie=ASApTrie.from_dict(self.trie.to_dict()))
        other.rng = self.rng
        return other


__all__ = ["ASAp", "ASApNode", "ASApSample", "ASApTrie"]
