package dev.fp8q.formats.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.testing.PythonReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The FP8 files torch wrote (../shared/testdata/torch) read correctly: layout and decoded values. */
class TorchWrittenFilesTest {

    static Path torchDir() {
        Path d = PythonReference.sharedDir().resolve("testdata/torch");
        Assumptions.assumeTrue(Files.isDirectory(d), "SKIPPED: " + d + " not present");
        return d;
    }

    @Test
    void comfyLegacyLayout() throws Exception {
        try (SafetensorsFile f = SafetensorsFile.open(torchDir().resolve("comfy_legacy_fp8_scaled.safetensors"))) {
            TensorEntry marker = f.tensor("scaled_fp8").orElseThrow();
            assertEquals(DType.F8_E4M3, marker.dtype());
            assertEquals(2, marker.dim(0));
            List<TensorEntry> scales = f.tensors().stream().filter(t -> t.name().endsWith(".scale_weight")).toList();
            assertTrue(!scales.isEmpty());
            for (TensorEntry s : scales) {
                assertEquals(DType.F32, s.dtype());
                assertEquals(0, s.rank());
                String w = s.name().replace(".scale_weight", ".weight");
                assertEquals(DType.F8_E4M3, f.tensor(w).orElseThrow().dtype());
            }
            assertTrue(f.tensors().stream().anyMatch(t -> t.dtype() == DType.BF16));
        }
    }

    @Test
    void decodedValuesEqualTheReferenceLibrarys() throws Exception {
        Path dir = torchDir();
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> p.toString().endsWith(".safetensors")).sorted().toList();
        }
        assertTrue(files.size() >= 2);
        PythonReference.require();
        for (Path p : files) {
            String ref = PythonReference.run("""
                    import sys, numpy as np, ml_dtypes
                    from safetensors import deserialize
                    dt = {'F8_E4M3': ml_dtypes.float8_e4m3fn, 'F8_E5M2': ml_dtypes.float8_e5m2, 'BF16': ml_dtypes.bfloat16,
                          'F32': np.float32, 'F16': np.float16}
                    for k, t in sorted(deserialize(open(sys.argv[1], 'rb').read())):
                        v = np.frombuffer(bytes(t['data']), dtype=dt[t['dtype']]).astype(np.float64)
                        print(k, t['dtype'], str(t['shape']).replace(' ', ''), ' '.join(repr(float(x)) for x in v))
                    """, p.toString());
            List<String> lines = ref.strip().lines().toList();
            try (SafetensorsFile f = SafetensorsFile.open(p)) {
                assertEquals(f.tensors().size(), lines.size(), p.getFileName().toString());
                for (String line : lines) {
                    String[] parts = line.split(" ", 4);
                    TensorEntry t = f.tensor(parts[0]).orElseThrow();
                    assertEquals(parts[1], t.dtype().name(), t.name());
                    assertEquals(parts[2], java.util.Arrays.toString(t.shape()).replace(" ", ""), t.name());
                    String[] vals = parts.length > 3 ? parts[3].split(" ") : new String[0];
                    assertEquals(t.numel(), vals.length, t.name());
                    var data = f.data(t);
                    for (int i = 0; i < vals.length; i++) {
                        double expect = Double.parseDouble(vals[i].replace("nan", "NaN").replace("inf", "Infinity"));
                        double got = Elements.get(data, t.dtype(), i);
                        if (Double.compare(expect, got) != 0) {
                            throw new AssertionError(p.getFileName() + " " + t.name() + "[" + i + "]: " + expect + " vs " + got);
                        }
                    }
                }
            }
        }
    }
}
