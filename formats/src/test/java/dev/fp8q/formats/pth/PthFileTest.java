package dev.fp8q.formats.pth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.formats.safetensors.TensorEntry;
import dev.fp8q.formats.testing.PythonReference;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PthFileTest {

    static Path torch(String name) {
        Path p = PythonReference.sharedDir().resolve("testdata/torch").resolve(name);
        Assumptions.assumeTrue(Files.exists(p), "SKIPPED: " + p + " not present");
        return p;
    }

    /** name dtype [shape] sha256, as the reference script prints them. */
    static List<String> listing(Checkpoint cp) throws Exception {
        List<String> out = new ArrayList<>();
        for (Checkpoint.Tensor t : cp.tensors()) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(t.data().asByteBuffer());
            out.add(t.name() + " " + t.entry().dtype() + " " + Arrays.toString(t.entry().shape()).replace(" ", "")
                    .replace(",", ", ") + " " + HexFormat.of().formatHex(md.digest()));
        }
        return out;
    }

    /** The independent reader (src/test/resources/pth_reference.py), run with python -c. */
    static String referenceScript() throws Exception {
        try (InputStream in = PthFileTest.class.getResourceAsStream("/pth_reference.py")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** Every tensor of every torch-written file equals what Python's pickle + numpy strides rebuild. */
    @Test
    void torchWrittenFilesReadAsThePythonReferenceReadsThem() throws Exception {
        String code = referenceScript();
        for (String[] c : new String[][] {{"wan_tiny_bf16.pth", ""}, {"nested_dict.pth", ""}, {"nested_dict.pth", "model"},
                {"vae_like_f32.pth", ""}}) {
            Path f = torch(c[0]);
            List<String> expect = PythonReference.run(code, f.toString(), c[1]).lines().toList();
            try (Checkpoint cp = Checkpoint.open(f, c[1].isEmpty() ? null : c[1])) {
                assertEquals(expect, listing(cp), c[0]);
            }
        }
    }

    /**
     * More files torch 2.11 wrote (bench/scripts/torch_pth_samples.py, kept in src/test/resources/torch): an F16
     * module state dict with an int64 counter, nn.Parameters and F64 / int / bool / 0-dim tensors, slices with steps,
     * an expand (stride 0) and a permuted 4-D view, an empty tensor, a state dict nested beside plain values, and
     * FP8 tensors (written through _rebuild_tensor_v3 and an untyped storage).
     */
    @Test
    void moreTorchWrittenFilesReadAsThePythonReferenceReadsThem() throws Exception {
        String code = referenceScript();
        for (String name : List.of("module_f16.pth", "parameters.pt", "views.pth", "training.pth", "fp8.pth")) {
            Path f = Path.of(getClass().getResource("/torch/" + name).toURI());
            List<String> expect = PythonReference.run(code, f.toString(), "").lines().toList();
            try (Checkpoint cp = Checkpoint.open(f)) {
                assertEquals(expect, listing(cp), name);
            }
        }
        try (PthFile p = PthFile.open(Path.of(getClass().getResource("/torch/training.pth").toURI()), null)) {
            assertEquals(List.of("weight", "bias"), p.tensors().stream().map(TensorEntry::name).toList(), "the dict under 'ema'");
        }
    }

    @Test
    void sharedStoragesAndNonContiguousViewsAreReadAsValues() throws Exception {
        try (Checkpoint cp = Checkpoint.open(torch("wan_tiny_bf16.pth"))) {
            Checkpoint.Tensor a = cp.tensor("shared.a").orElseThrow();
            Checkpoint.Tensor b = cp.tensor("shared.b_view").orElseThrow();
            // b_view = a's storage from element 24 on, 4 x 12 (torch wrote storage offset 24)
            assertEquals(-1, a.data().asSlice(24 * 2, 48 * 2).mismatch(b.data()));
            assertTrue(a.data().isMapped(), "contiguous tensors are slices of the mapping, not copies");
            assertFalse(cp.tensor("transposed").orElseThrow().data().isMapped(), "a transposed view is gathered");
        }
    }

    @Test
    void aNestedStateDictIsFoundOrChosenByKey() throws Exception {
        Path f = torch("nested_dict.pth");
        try (PthFile p = PthFile.open(f, null); PthFile k = PthFile.open(f, "model")) {
            assertEquals(p.tensors().stream().map(TensorEntry::name).toList(), k.tensors().stream().map(TensorEntry::name).toList());
        }
        FormatException e = assertThrows(FormatException.class, () -> PthFile.open(f, "optimizer"));
        assertTrue(e.getMessage().contains("no dict under key 'optimizer'") && e.getMessage().contains("model"), e.getMessage());
    }

    @Test
    void theLegacyFormatIsRefusedWithAClearMessage() {
        Path legacy = torch("legacy_format.pth");
        FormatException e = assertThrows(FormatException.class, () -> Checkpoint.open(legacy));
        assertEquals(Rule.PTH_LEGACY, e.rule());
        assertTrue(e.getMessage().startsWith(legacy + ": PyTorch checkpoint in the pre-1.6 format"));
    }

    // ---- hostile archives and pickles, built here byte by byte ----

    /** A zip of STORED entries, as torch writes them. */
    static Path zip(Path file, Map<String, byte[]> entries) throws Exception {
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(file))) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipEntry ze = new ZipEntry(e.getKey());
                ze.setMethod(e.getKey().endsWith(".deflated") ? ZipEntry.DEFLATED : ZipEntry.STORED);
                CRC32 crc = new CRC32();
                crc.update(e.getValue());
                ze.setSize(e.getValue().length);
                ze.setCrc(crc.getValue());
                z.putNextEntry(ze);
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        return file;
    }

    /** Pickle bytes from a readable spec: text is ASCII, \\xNN a byte. */
    static byte[] pk(Object... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Object p : parts) {
            if (p instanceof String s) {
                out.writeBytes(s.getBytes(StandardCharsets.ISO_8859_1));
            } else if (p instanceof Integer i) {
                out.write(i);
            } else {
                out.writeBytes((byte[]) p);
            }
        }
        return out.toByteArray();
    }

    static byte[] u32(long v) {
        return ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt((int) v).array();
    }

    /** {'w': tensor(storage '0' of 4 floats, offset, size (2, 2), stride)}; the storage holds `bytes` bytes. */
    static byte[] tensorPickle(int offset, int stride0, String storageKey) {
        return pk(0x80, 2, "}", "X", u32(1), "w",
                "ctorch._utils\n_rebuild_tensor_v2\n", "(",
                "(", "X", u32(7), "storage", "ctorch\nFloatStorage\n", "X", u32(storageKey.length()), storageKey, "X", u32(3), "cpu",
                "K", 4, "t", "Q",
                "K", offset, "K", 2, "K", 2, 0x86, "K", stride0, "K", 1, 0x86, 0x89, "}", "t", "R", "s", ".");
    }

    static FormatException refused(Path dir, Map<String, byte[]> entries) throws Exception {
        Path f = zip(dir.resolve("hostile.pth"), entries);
        FormatException e = assertThrows(FormatException.class, () -> Checkpoint.open(f));
        assertTrue(e.getMessage().startsWith(f.toString()), "names the file: " + e.getMessage());
        return e;
    }

    static Map<String, byte[]> archive(byte[] pickle, byte[] storage) {
        Map<String, byte[]> m = new LinkedHashMap<>();
        m.put("archive/data.pkl", pickle);
        m.put("archive/byteorder", "little".getBytes(StandardCharsets.US_ASCII));
        if (storage != null) {
            m.put("archive/data/0", storage);
        }
        return m;
    }

    @Test
    void aWellFormedHandMadeArchiveReads(@TempDir Path dir) throws Exception {
        Path f = zip(dir.resolve("ok.pth"), archive(tensorPickle(0, 2, "0"), new byte[16]));
        try (Checkpoint cp = Checkpoint.open(f)) {
            assertEquals(List.of(2L, 2L), Arrays.stream(cp.tensor("w").orElseThrow().entry().shape()).boxed().toList());
        }
    }

    @Test
    void globalsOutsideTheAllowListAreRefusedByName(@TempDir Path dir) throws Exception {
        FormatException e = refused(dir, archive(pk(0x80, 2, "cposix\nsystem\n", "X", u32(2), "ls", 0x85, "R", "."), null));
        assertEquals(Rule.PICKLE_FORBIDDEN, e.rule());
        assertTrue(e.getMessage().contains("'posix.system'"), e.getMessage());
        e = refused(dir, archive(pk(0x80, 4, 0x8c, 8, "builtins", 0x8c, 4, "eval", 0x93, "."), null));
        assertTrue(e.getMessage().contains("'builtins.eval'"), e.getMessage());
        e = refused(dir, archive(pk(0x80, 2, "ctorch\nload\n", "."), null));
        assertEquals(Rule.PICKLE_FORBIDDEN, e.rule());
    }

    @Test
    void pickleBombsAndMalformedPicklesAreRefused(@TempDir Path dir) throws Exception {
        // a dict that holds itself
        assertEquals(Rule.PTH_INVALID, refused(dir, archive(pk(0x80, 2, "}", "q", 0, "X", u32(1), "a", "h", 0, "s", "."), null)).rule());
        // 40 nested dicts
        byte[] deep = new byte[40 * 7 + 4];
        ByteBuffer b = ByteBuffer.wrap(deep);
        b.put((byte) 0x80).put((byte) 2);
        for (int i = 0; i < 40; i++) {
            b.put((byte) '}').put((byte) 'X').put(u32(1)).put((byte) 'k');
        }
        byte[] tail = new byte[40];
        Arrays.fill(tail, (byte) 's');
        Path deepFile = zip(dir.resolve("deep.pth"), archive(pk(Arrays.copyOf(deep, b.position()), "}", tail, "."), null));
        FormatException deepError = assertThrows(FormatException.class, () -> Checkpoint.open(deepFile, "k"));
        assertTrue(deepError.getMessage().contains("deeper than 32"), deepError.getMessage());
        // a memo reference that was never stored, a string longer than the pickle, truncation, an unknown opcode
        for (byte[] p : List.of(pk(0x80, 2, "j", u32(0xFFFF_FFFFL), "."), pk(0x80, 2, "X", u32(0x7FFF_FFF0L), "ab", "."),
                pk(0x80, 2, "}", "X", u32(1)), pk(0x80, 2, "}", 0xFE, "."), pk(0x80, 2, "s", "."))) {
            FormatException e = refused(dir, archive(p, null));
            assertEquals(Rule.PICKLE_INVALID, e.rule(), e.getMessage());
        }
    }

    @Test
    void hostileArchivesAreRefused(@TempDir Path dir) throws Exception {
        Map<String, byte[]> dots = archive(tensorPickle(0, 2, "0"), new byte[16]);
        dots.put("archive/../../evil", new byte[1]);
        assertEquals(Rule.PTH_HOSTILE_PATH, refused(dir, dots).rule());
        // a view past the end of its storage, a storage the archive lacks, a compressed storage
        assertEquals(Rule.PTH_INVALID, refused(dir, archive(tensorPickle(2, 2, "0"), new byte[16])).rule());
        assertEquals(Rule.PTH_INVALID, refused(dir, archive(tensorPickle(0, 3, "0"), new byte[16])).rule());
        assertEquals(Rule.PTH_INVALID, refused(dir, archive(tensorPickle(0, 2, "0"), new byte[12])).rule());
        assertEquals(Rule.PTH_INVALID, refused(dir, archive(tensorPickle(0, 2, "9"), new byte[16])).rule());
        Map<String, byte[]> deflated = archive(tensorPickle(0, 2, "0.deflated"), null);
        deflated.put("archive/data/0.deflated", new byte[16]);
        FormatException e = refused(dir, deflated);
        assertTrue(e.getMessage().contains("compressed"), e.getMessage());
        Files.write(dir.resolve("junk.pth"), new byte[] {1, 2, 3, 4, 5});
        assertEquals(Rule.PTH_INVALID, assertThrows(FormatException.class, () -> Checkpoint.open(dir.resolve("junk.pth"))).rule());
    }
}
