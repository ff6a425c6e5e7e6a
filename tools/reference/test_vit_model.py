"""Cross-checks of the reference ViT (vit_model.py) against independent implementations:
PyTorch's own nn.TransformerEncoderLayer (always) and torchvision's VisionTransformer (when
python3-torchvision is installed). Run with
    /usr/bin/python3 -m unittest discover -s tools/reference -p 'test_*.py'
"""

import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit_model import RefViT  # noqa: E402

try:
    from torchvision.models.vision_transformer import VisionTransformer
except ImportError:  # pragma: no cover
    VisionTransformer = None


def model(**kw):
    cfg = dict(image_size=12, patch=4, channels=3, dim=24, depth=2, heads=4, ffn=40, classes=6)
    cfg.update(kw)
    m = RefViT(**cfg).double()
    m.init_random(3)
    return m


class TestAgainstTorchEncoderLayer(unittest.TestCase):
    def test_block(self):
        m = model()
        blk = m.blocks[1]
        ref = torch.nn.TransformerEncoderLayer(24, 4, dim_feedforward=40, dropout=0.0, activation="gelu",
                                               layer_norm_eps=1e-6, batch_first=True, norm_first=True).double()
        with torch.no_grad():
            ref.self_attn.in_proj_weight.copy_(blk.qkv_w)
            ref.self_attn.in_proj_bias.copy_(blk.qkv_b)
            ref.self_attn.out_proj.weight.copy_(blk.out_w)
            ref.self_attn.out_proj.bias.copy_(blk.out_b)
            ref.linear1.weight.copy_(blk.up_w)
            ref.linear1.bias.copy_(blk.up_b)
            ref.linear2.weight.copy_(blk.down_w)
            ref.linear2.bias.copy_(blk.down_b)
            ref.norm1.weight.copy_(blk.ln1_w)
            ref.norm1.bias.copy_(blk.ln1_b)
            ref.norm2.weight.copy_(blk.ln2_w)
            ref.norm2.bias.copy_(blk.ln2_b)
        ref.eval()
        x = torch.randn(2, 10, 24, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        with torch.no_grad():
            want = ref(x)
            got = blk(x, 1e-6, 6 ** -0.5)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@unittest.skipIf(VisionTransformer is None, "python3-torchvision is not installed")
class TestAgainstTorchvision(unittest.TestCase):
    def test_logits(self):
        m = model()
        tv = VisionTransformer(image_size=12, patch_size=4, num_layers=2, num_heads=4, hidden_dim=24, mlp_dim=40,
                               num_classes=6).double()
        tv.load_state_dict(m.torchvision_state_dict(), strict=True)
        tv.eval()
        x = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(m(x), tv(x), rtol=1e-10, atol=1e-10)

    def test_old_mlp_names_load(self):
        m = model(depth=1)
        tv = VisionTransformer(image_size=12, patch_size=4, num_layers=1, num_heads=4, hidden_dim=24, mlp_dim=40,
                               num_classes=6).double()
        tv.load_state_dict(m.torchvision_state_dict("old"), strict=True)  # torchvision renames linear_1/2


class TestTrace(unittest.TestCase):
    def test_trace_names_and_shapes(self):
        for kw, extra in ((dict(), ["norm"]), (dict(distilled=True), ["norm"]),
                          (dict(pool="mean"), ["pooled", "fc_norm"])):
            m = model(**kw)
            tr = {}
            m(torch.zeros(1, 3, 12, 12, dtype=torch.float64), tr)
            t = 9 + (2 if kw.get("distilled") else 1)
            self.assertEqual(tuple(tr["embed"].shape), (1, t, 24))
            self.assertEqual(tuple(tr["blk.1.qkv"].shape), (1, t, 72))
            self.assertEqual(tuple(tr["blk.1.ffn_up"].shape), (1, t, 40))
            self.assertEqual(tuple(tr["logits"].shape), (1, 6))
            for e in extra:
                self.assertIn(e, tr)


if __name__ == "__main__":
    unittest.main()
