# Writes .pth files with torch.save that ../shared/testdata does not hold, for checking fp8q's .pth reader
# against Python's pickle + numpy (formats/src/test/resources/pth_reference.py). Run where torch is installed
# (the GPU machine): python3 bench/scripts/torch_pth_samples.py OUT_DIR
import collections, os, sys
import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

# an nn.Module state dict (Linear, Conv2d, LayerNorm, BatchNorm's int64 counter), F16
m = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten(),
                        torch.nn.Linear(8 * 6 * 6, 32), torch.nn.LayerNorm(32)).half()
torch.save(m.state_dict(), os.path.join(out, 'module_f16.pth'))

# nn.Parameter objects (rebuilt through _rebuild_parameter), BF16 with F32 and F64 and integer and bool tensors
p = collections.OrderedDict()
p['w'] = torch.nn.Parameter(torch.randn(16, 32, dtype=torch.bfloat16))
p['b'] = torch.nn.Parameter(torch.randn(16, dtype=torch.float32), requires_grad=False)
p['d'] = torch.randn(3, 5, dtype=torch.float64)
p['i'] = torch.arange(10, dtype=torch.int32)
p['mask'] = torch.rand(7) > 0.5
p['scalar'] = torch.tensor(3.5)
torch.save(p, os.path.join(out, 'parameters.pt'))

# views: a column slice, a step slice, an expand (stride 0), a permuted 4-D tensor, one storage shared by four
base = torch.randn(32, 48, dtype=torch.bfloat16)
v = {'base': base, 'cols': base[:, 8:24], 'step': base[::3, ::2], 'row': base[5], 'expanded': base[0:1].expand(4, 48),
     'permuted': torch.randn(2, 3, 4, 5).permute(3, 1, 0, 2), 'empty': torch.zeros(0, 16)}
torch.save(v, os.path.join(out, 'views.pth'))

# a training checkpoint: state dict nested under "ema", with optimizer state and plain values beside it
lin = torch.nn.Linear(64, 64).to(torch.bfloat16)
torch.save({'step': 1000, 'lr': 1e-4, 'ema': lin.state_dict(), 'args': {'name': 'run-1', 'dims': [64, 64]}},
           os.path.join(out, 'training.pth'))

# FP8 tensors (torch writes them with their own storage type names)
torch.save({'w8': torch.randn(8, 16).to(torch.float8_e4m3fn), 'w5': torch.randn(8, 16).to(torch.float8_e5m2),
            'scale': torch.tensor([0.5])}, os.path.join(out, 'fp8.pth'))
print('\n'.join(sorted(os.listdir(out))))
