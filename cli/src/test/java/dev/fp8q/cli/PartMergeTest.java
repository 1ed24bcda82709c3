package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.FileTrees;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.manifest.PartManifest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Conversion across machines (issue 24, item 3): convert --part I/N on N machines, then one merge, gives the
 * single run's output byte for byte, whatever the order the parts are given in; a missing, duplicate or foreign
 * part is refused by name, and the parts are never changed.
 */
class PartMergeTest {

    /** Converts SRC into root/out once, then in n parts merged in each order, comparing every file's bytes. */
    private static void assertMergeEqualsSingleRun(Path root, Path src, int n, List<List<Integer>> orders, String... options)
            throws Exception {
        Path out = root.resolve("out");
        List<String> single = new ArrayList<>(List.of("convert", src.toString(), out.toString()));
        single.addAll(Arrays.asList(options));
        DropInTest.ok(single.toArray(String[]::new));
        Path reference = root.resolve("single");
        Files.move(out, reference);
        Map<String, byte[]> expected = DropInTest.tree(reference);
        List<Path> parts = new ArrayList<>();
        for (int i = 1; i <= n; i++) {
            Path p = root.resolve("part" + i);
            List<String> args = new ArrayList<>(List.of("convert", src.toString(), p.toString(), "--part", i + "/" + n));
            args.addAll(Arrays.asList(options));
            DropInTest.ok(args.toArray(String[]::new));
            parts.add(p);
        }
        Map<String, byte[]> partBytes = new java.util.TreeMap<>();
        for (Path p : parts) {
            DropInTest.tree(p).forEach((k, v) -> partBytes.put(p.getFileName() + "/" + k, v));
        }
        for (List<Integer> order : orders) {
            List<String> merge = new ArrayList<>(List.of("merge", "--quiet"));
            order.forEach(i -> merge.add(parts.get(i - 1).toString()));
            merge.add(out.toString());
            DropInTest.ok(merge.toArray(String[]::new));
            DropInTest.assertSameTree(expected, DropInTest.tree(out), "merged in order " + order + " vs the single run");
            DropInTest.ok("check", out.toString());
            FileTrees.delete(out);
        }
        Map<String, byte[]> after = new java.util.TreeMap<>();
        for (Path p : parts) {
            DropInTest.tree(p).forEach((k, v) -> after.put(p.getFileName() + "/" + k, v));
        }
        DropInTest.assertSameTree(partBytes, after, "the parts, after merging");
    }

    @Test
    void aShardedReleaseInFourPartsMergesToTheSingleRunInAnyOrder(@TempDir Path dir) throws Exception {
        Path rel = dir.resolve("rel");
        DropInTest.ok("testdata", "make", rel.toString(), "--experts", "both", "--shard-size", "600KB");
        Files.writeString(rel.resolve("README.md"), "# carried\n");
        Files.writeString(rel.resolve("high_noise_model/config.json"), "{\"dim\": 128, \"num_layers\": 2}\n");
        Files.createDirectories(rel.resolve("google/umt5-xxl"));
        Files.writeString(rel.resolve("google/umt5-xxl/tokenizer.json"), "{\"model\": \"umt5\"}\n");
        Manifest single;
        assertMergeEqualsSingleRun(dir, rel, 4, List.of(List.of(1, 2, 3, 4), List.of(3, 1, 4, 2), List.of(4, 3, 2, 1)),
                "--layout", "compressed-tensors", "--scaling", "channel");
        single = Manifest.read(dir.resolve("single").resolve(Manifest.FILE));
        assertTrue(single.sources().size() >= 6, "several shards per expert: " + single.sources());

        // Every shard in exactly one part, the bytes balanced, part 1 carrying what was not converted.
        Set<String> seen = new HashSet<>();
        long[] load = new long[5];
        for (int i = 1; i <= 4; i++) {
            PartManifest p = PartManifest.read(dir.resolve("part" + i).resolve(PartManifest.FILE));
            assertEquals(i, p.part());
            for (PartManifest.Shard s : p.shards()) {
                if (s.part() == i) {
                    assertTrue(seen.add(s.output()), s.output() + " in one part only");
                    assertTrue(Files.isRegularFile(dir.resolve("part" + i).resolve(s.output())), s.output() + " in part " + i);
                    load[i] += s.bytes();
                } else {
                    assertFalse(Files.exists(dir.resolve("part" + i).resolve(s.output())), s.output() + " not in part " + i);
                }
            }
            assertEquals(i == 1, Files.isRegularFile(dir.resolve("part" + i).resolve("README.md")), "part 1 carries");
        }
        assertEquals(single.sources().size(), seen.size());
        long max = single.sources().stream().mapToLong(Manifest.Source::bytes).max().orElseThrow();
        long total = single.sources().stream().mapToLong(Manifest.Source::bytes).sum();
        for (int i = 1; i <= 4; i++) {
            assertTrue(load[i] > 0 && load[i] <= total / 4 + max, "part " + i + " holds " + load[i] + " of " + total);
        }
        CliRun v = DropInTest.ok("merge", "--quiet", dir.resolve("part2").toString(), dir.resolve("part1").toString(),
                dir.resolve("part4").toString(), dir.resolve("part3").toString(), dir.resolve("merged").toString());
        assertEquals("", v.out());
        DropInTest.ok("verify", "--quiet", "--device", "cpu", "--blocks", "0", rel.resolve("high_noise_model").toString(),
                dir.resolve("merged/high_noise_model").toString());
    }

    @Test
    void aPipelineWithEveryComponentConvertedMerges(@TempDir Path dir) throws Exception {
        Path p = dir.resolve("Qwen-Image");
        DropInTest.ok("testdata", "make", "--family", "qwen-image", "--pipeline", p.toString());
        // Three converted components (one shard each): part 4 is valid but holds no shard.
        assertMergeEqualsSingleRun(dir, p, 4, List.of(List.of(2, 4, 1, 3)), "--components", "all", "--layout", "modelopt",
                "--scaling", "block");
        PartManifest p4 = PartManifest.read(dir.resolve("part4").resolve(PartManifest.FILE));
        assertTrue(p4.manifest().tensors().isEmpty() && p4.shards().stream().noneMatch(s -> s.part() == 4), "an empty part");
    }

    @Test
    void aReleaseWithPthComponentsAndASingleFileMerge(@TempDir Path dir) throws Exception {
        Path rel = DropInTest.release(dir.resolve("src"));
        Files.delete(rel.resolve("training_state.pt")); // not a torch zip: --components all would refuse it
        assertMergeEqualsSingleRun(dir.resolve("a"), rel, 3, List.of(List.of(3, 2, 1)), "--components", "all");
        Path file = rel.resolve("high_noise_model/diffusion_pytorch_model.safetensors");
        Path b = Files.createDirectories(dir.resolve("b"));
        DropInTest.ok("convert", file.toString(), b.resolve("wan_fp8.safetensors").toString());
        Map<String, byte[]> expected = DropInTest.tree(b);
        FileTrees.delete(b);
        for (int i = 1; i <= 3; i++) {
            DropInTest.ok("convert", file.toString(), dir.resolve("f" + i).toString(), "--part", i + "/3");
        }
        DropInTest.ok("merge", dir.resolve("f2").toString(), dir.resolve("f3").toString(), dir.resolve("f1").toString(),
                b.resolve("wan_fp8.safetensors").toString());
        DropInTest.assertSameTree(expected, DropInTest.tree(b), "a file SRC: the file and its manifest");
        DropInTest.ok("check", b.resolve("wan_fp8.safetensors").toString());
    }

    @Test
    void missingDuplicateAndForeignPartsAreRefusedByName(@TempDir Path dir) throws Exception {
        Path rel = dir.resolve("rel");
        DropInTest.ok("testdata", "make", rel.toString(), "--experts", "both", "--shard-size", "600KB");
        List<String> p = new ArrayList<>();
        for (int i = 1; i <= 4; i++) {
            p.add(dir.resolve("p" + i).toString());
            DropInTest.ok("convert", "--quiet", rel.toString(), p.getLast(), "--part", i + "/4");
        }
        String dst = dir.resolve("dst").toString();
        CliRun missing = DropInTest.refused("merge", p.get(0), p.get(1), p.get(3), dst);
        assertTrue(missing.err().contains("part 3/4") && missing.err().contains("missing"), missing.err());
        CliRun twice = DropInTest.refused("merge", p.get(0), p.get(1), p.get(1), p.get(2), p.get(3), dst);
        assertTrue(twice.err().contains(p.get(1) + " and " + p.get(1) + " are both part 2/4"), twice.err());
        Path foreign = dir.resolve("foreign");
        DropInTest.ok("convert", "--quiet", rel.toString(), foreign.toString(), "--part", "3/4", "--pow2-scales");
        CliRun other = DropInTest.refused("merge", p.get(0), p.get(1), foreign.toString(), p.get(3), dst);
        assertTrue(other.err().contains(foreign + " (part 3/4) comes from another conversion"), other.err());
        Path three = dir.resolve("three");
        DropInTest.ok("convert", "--quiet", rel.toString(), three.toString(), "--part", "3/3");
        assertTrue(DropInTest.refused("merge", p.get(0), p.get(1), three.toString(), p.get(3), dst).err()
                .contains(three + " (part 3/3) comes from another conversion"));
        CliRun notPart = DropInTest.refused("merge", p.get(0), p.get(1), rel.toString(), p.get(3), dst);
        assertTrue(notPart.err().contains(rel + ": not a partial output"), notPart.err());
        assertFalse(Files.exists(Path.of(dst)), "no output after a refusal");
        CliRun intoPart = DropInTest.refused("merge", p.get(0), p.get(1), p.get(2), p.get(3), p.get(1));
        assertTrue(intoPart.err().contains("DST is a PART"), intoPart.err());
        DropInTest.refused("convert", rel.toString(), dir.resolve("x").toString(), "--part", "5/4");
        // An earlier part is replaced with --force, as an earlier output is.
        DropInTest.refused("convert", "--quiet", rel.toString(), p.get(0), "--part", "1/4");
        DropInTest.ok("convert", "--quiet", "--force", rel.toString(), p.get(0), "--part", "1/4");
        DropInTest.ok("merge", "--quiet", p.get(3), p.get(2), p.get(1), p.get(0), dst);
        DropInTest.ok("check", dst);
    }
}
