# Independent check of one fp8q output against its source, for a layout and a scaling, with numpy and
# ml_dtypes: scales recomputed from the source (rounded to BF16 first with scale dtype bf16), codes =
# clamp(x / scale, +-448) cast to float8_e4m3fn. Names, dtypes and shapes are read with the safetensors library
# itself. MX (--scaling mx): per 32-block of a row, X = 2^(floor(log2(amax)) - 8) (frexp, clamped to E8M0's
# [-127, 127], 2^-127 for an all-zero block) decoded by ml_dtypes' float8_e8m0fnu, codes = clamp(x / X) cast as above;
# ComfyUI's swizzled scale layout is rebuilt with its to_blocked reshapes. Prints "ok <quantized count>".
import json, math, os, struct, sys
import numpy as np, ml_dtypes
from safetensors import safe_open

src, dst, layout, scaling, pow2 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "true"
bf16 = len(sys.argv) > 6 and sys.argv[6] == "bf16"
DT = {'BF16': ml_dtypes.bfloat16, 'F16': np.float16, 'F32': np.float32, 'F8_E4M3': ml_dtypes.float8_e4m3fn,
      'F8_E8M0': ml_dtypes.float8_e8m0fnu, 'U8': np.uint8}

def load(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in h.items():
        if k != '__metadata__':
            a, b = v['data_offsets']
            out[k] = np.frombuffer(data[a:b], dtype=DT[v['dtype']]).reshape(v['shape'])
    with safe_open(path, 'np') as f:  # the reference library agrees on names, dtypes and shapes
        assert sorted(f.keys()) == sorted(out), path
        for k in f.keys():
            s = f.get_slice(k)
            assert s.get_dtype() == [d for d, t in DT.items() if t == out[k].dtype][0], k
            assert list(s.get_shape()) == list(out[k].shape), k
        meta = f.metadata() or {}
    return meta, out

def scale_of(amax):
    s = f32_scale_of(amax)
    return np.float32(s.astype(ml_dtypes.bfloat16)) if bf16 else s

def f32_scale_of(amax):
    amax = np.float32(amax)
    if amax == 0:
        return np.float32(1)
    if not pow2:
        return np.float32(amax / np.float32(448))
    e = -160
    while 448.0 * 2.0 ** e < float(amax):
        e += 1
    return np.float32(2.0 ** max(e, -149))

def mx_exponents(m):
    amax = np.abs(m.reshape(m.shape[0], -1, 32)).max(axis=2).astype(np.float64)
    _, e = np.frexp(amax)  # amax = f * 2^e, f in [0.5, 1): floor(log2(amax)) = e - 1
    return np.where(amax == 0, -127, np.clip(e - 1 - 8, -127, 127)).astype(np.int32)

def to_blocked(grid):  # comfy_kitchen float_utils.to_blocked(flatten=False), on a numpy grid
    rows, cols = grid.shape
    nr, nc = -(-rows // 128), -(-cols // 4)
    padded = np.zeros((nr * 128, nc * 4), dtype=grid.dtype)
    padded[:rows, :cols] = grid
    blocks = padded.reshape(nr, 128, nc, 4).transpose(0, 2, 1, 3)
    return blocks.reshape(-1, 4, 32, 4).transpose(0, 2, 1, 3).reshape(nr * 128, nc * 4)

_, S = load(src)
meta, D = load(os.path.join(dst, os.path.basename(src)))
cfg = json.load(open(os.path.join(dst, 'config.json'))) if os.path.exists(os.path.join(dst, 'config.json')) else None
quantized = [k for k, v in D.items() if v.dtype == ml_dtypes.float8_e4m3fn and k != 'scaled_fp8']
for k, x in S.items():
    if k not in quantized:
        assert D[k].tobytes() == x.tobytes(), 'preserved ' + k
for w in quantized:
    x = S[w].astype(np.float32)
    rows = x.shape[0]
    m = x.reshape(rows, -1)
    cols = m.shape[1]
    if scaling == 'tensor':
        grid = np.array([[scale_of(np.abs(m).max())]], dtype=np.float32)
        per = np.full(m.shape, grid[0, 0], dtype=np.float32)
    elif scaling == 'channel':
        grid = np.array([[scale_of(np.abs(r).max())] for r in m], dtype=np.float32)
        per = np.repeat(grid, cols, axis=1)
    elif scaling == 'mx':
        e8m0 = (mx_exponents(m) + 127).astype(np.uint8)
        grid = e8m0.view(ml_dtypes.float8_e8m0fnu).astype(np.float32)
        per = np.repeat(grid, 32, axis=1)
    else:
        gr, gc = -(-rows // 128), -(-cols // 128)
        grid = np.zeros((gr, gc), dtype=np.float32)
        for i in range(gr):
            for j in range(gc):
                grid[i, j] = scale_of(np.abs(m[i*128:(i+1)*128, j*128:(j+1)*128]).max())
        per = np.repeat(np.repeat(grid, 128, axis=0), 128, axis=1)[:rows, :cols]
    codes = np.clip(m / per, -448, 448).astype(ml_dtypes.float8_e4m3fn)
    assert codes.view(np.uint8).tobytes() == D[w].view(np.uint8).tobytes(), 'codes of ' + w
    layer = w[:-len('.weight')]
    name = {'comfy-legacy': layer + '.scale_weight', 'hf-fp8': w + '_scale_inv',
            'vllm-fp8': w + ('_scale_inv' if scaling == 'block' else '_scale')}.get(layout, w + '_scale')
    shape = {'tensor': [1] if layout == 'compressed-tensors' else [],
             'channel': [rows] if layout == 'modelopt' else [rows, 1],
             'block': [grid.shape[0], 1, grid.shape[1], 1] if layout == 'modelopt' else list(grid.shape),
             'mx': [rows, cols // 32]}[scaling]
    if scaling == 'mx':
        stored = to_blocked(e8m0).view(ml_dtypes.float8_e8m0fnu) if layout == 'comfy' else e8m0
        shape = list(stored.shape)
    assert list(D[name].shape) == shape, (name, D[name].shape, shape)
    if scaling != 'mx':
        stored = grid.astype(ml_dtypes.bfloat16) if bf16 else grid
    assert D[name].dtype == stored.dtype and D[name].tobytes() == stored.tobytes(), 'scales of ' + w
preserved_linears = sorted(k[:-len('.weight')] for k, v in S.items() if k not in quantized and k.endswith('.weight') and v.ndim == 2)
if layout == 'comfy':
    layers = json.loads(meta['_quantization_metadata'])['layers']
    assert sorted(layers) == sorted(w[:-len('.weight')] for w in quantized)
    assert all(v == {'format': 'mxfp8' if scaling == 'mx' else 'float8_e4m3fn'} for v in layers.values())
else:
    assert '_quantization_metadata' not in meta
if layout == 'comfy-legacy':
    assert D['scaled_fp8'].dtype == ml_dtypes.float8_e4m3fn and list(D['scaled_fp8'].shape) == [0]
else:
    assert 'scaled_fp8' not in D
qc = cfg.get('quantization_config') if cfg else None
if layout == 'comfy' and scaling == 'mx':  # swizzled E8M0 scales, which compressed-tensors does not read
    assert qc is None
elif layout in ('comfy', 'compressed-tensors'):
    assert qc['quant_method'] == 'compressed-tensors'
    assert qc['format'] == ('mxfp8-quantized' if scaling == 'mx' else 'float-quantized')
    assert qc['quantization_status'] == 'compressed'
    g = qc['config_groups']['group_0']
    if scaling == 'mx':  # compressed-tensors' MXFP8 scheme: what MXFP8QuantizationCompressor.can_compress asks for
        for args in (g['weights'], g['input_activations']):
            assert args['strategy'] == 'group' and args['group_size'] == 32 and args['scale_dtype'] == 'torch.uint8'
            assert args['num_bits'] == 8 and args['type'] == 'float'
        scaling = 'group'
    assert g['targets'] == ['Linear'] and g['weights']['strategy'] == scaling and g['weights']['type'] == 'float'
    assert g['weights']['num_bits'] == 8 and g['weights']['dynamic'] is False and g['weights']['symmetric'] is True
    assert (g['weights'].get('block_structure') == [128, 128]) == (scaling == 'block')
    assert g['input_activations']['dynamic'] is True
    assert sorted(qc['ignore']) == preserved_linears
elif layout in ('hf-fp8', 'vllm-fp8'):
    assert qc['quant_method'] == 'fp8' and qc['activation_scheme'] == 'dynamic'
    assert sorted(qc['ignored_layers']) == preserved_linears
    # transformers assumes [128, 128] when the key is absent: per-tensor must say null
    assert 'weight_block_size' in qc and qc['weight_block_size'] == ([128, 128] if scaling == 'block' else None)
    assert ('modules_to_not_convert' in qc) == (layout == 'hf-fp8')
    if layout == 'hf-fp8':
        assert sorted(qc['modules_to_not_convert']) == preserved_linears
elif layout == 'modelopt':
    algo = {'block': 'FP8_PB_WO', 'mx': 'MXFP8'}.get(scaling, 'FP8_PER_CHANNEL_PER_TOKEN')
    hq = json.load(open(os.path.join(dst, 'hf_quant_config.json')))
    assert hq['quantization'].get('group_size') == (32 if scaling == 'mx' else None)
    assert hq['producer']['name'] == 'modelopt' and hq['quantization']['quant_algo'] == algo
    assert sorted(hq['quantization']['exclude_modules']) == preserved_linears
    assert qc['quant_method'] == 'modelopt' and qc['quant_algo'] == algo
    assert sorted(qc['ignore']) == preserved_linears and 'quant_type' not in qc  # not a diffusers config
else:
    assert qc is None
print('ok', len(quantized))
