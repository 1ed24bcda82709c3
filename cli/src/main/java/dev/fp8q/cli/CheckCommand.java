package dev.fp8q.cli;

import dev.fp8q.formats.Crc32c;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.safetensors.SafetensorsFile;
import dev.fp8q.formats.safetensors.TensorEntry;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** fp8q check DST: every tensor's bytes against the manifest's CRC32C. */
@Command(name = "check", mixinStandardHelpOptions = true,
        description = "Recompute checksums against fp8-manifest.json; names every tensor whose bytes, dtype or shape changed.")
final class CheckCommand implements Callable<Integer> {

    @Parameters(paramLabel = "DST", description = "An output of fp8q convert: a folder, or a file with its manifest beside it")
    Path dst;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Path manifest = Manifest.locate(dst);
        if (!Files.isRegularFile(manifest)) {
            throw new Fp8q.UsageException(dst + ": no fp8q manifest (" + manifest + ")");
        }
        Manifest m = Manifest.read(manifest);
        boolean folder = Files.isDirectory(dst);
        PrintWriter out = spec.commandLine().getOut();
        Map<String, List<Manifest.TensorRecord>> byFile = new LinkedHashMap<>();
        for (Manifest.TensorRecord r : m.tensors()) {
            if (r.file() == null || r.file().contains("..") || Path.of(r.file()).isAbsolute()) {
                throw new Fp8q.UsageException(manifest + ": tensor '" + r.name() + "' names a file outside DST: " + r.file());
            }
            if (!folder && !r.file().equals(dst.getFileName().toString())) {
                throw new Fp8q.UsageException(manifest + ": tensor '" + r.name() + "' is in " + r.file() + ", not in " + dst);
            }
            byFile.computeIfAbsent(r.file(), k -> new ArrayList<>()).add(r);
        }
        List<String> problems = new ArrayList<>();
        int checked = 0;
        for (var e : byFile.entrySet()) {
            Path file = folder ? dst.resolve(e.getKey()) : dst;
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                Set<String> listed = new HashSet<>();
                for (Manifest.TensorRecord r : e.getValue()) {
                    listed.add(r.name());
                    TensorEntry t = f.tensor(r.name()).orElse(null);
                    if (t == null) {
                        problems.add(e.getKey() + ": tensor '" + r.name() + "' is missing");
                        continue;
                    }
                    checked++;
                    if (!t.dtype().name().equals(r.dtype()) || !Arrays.equals(t.shape(), r.shape().stream().mapToLong(Long::longValue).toArray())) {
                        problems.add(e.getKey() + ": tensor '" + r.name() + "' is " + t.dtype() + " " + t.shapeString()
                                + ", the manifest says " + r.dtype() + " " + r.shape());
                    } else {
                        String crc = Crc32c.hex(Crc32c.of(f.data(t)));
                        if (!crc.equals(r.crc32c())) {
                            problems.add(e.getKey() + ": tensor '" + r.name() + "' bytes changed (CRC32C " + crc
                                    + ", manifest " + r.crc32c() + ")");
                        }
                    }
                }
                for (TensorEntry t : f.tensors()) {
                    if (!listed.contains(t.name())) {
                        problems.add(e.getKey() + ": tensor '" + t.name() + "' is not in the manifest");
                    }
                }
            } catch (FormatException ex) {
                problems.add(ex.getMessage());
            }
        }
        if (problems.isEmpty()) {
            out.printf("ok: %d tensors in %d file(s) match %s%n", checked, byFile.size(), manifest.getFileName());
            return ExitCodes.OK;
        }
        PrintWriter err = spec.commandLine().getErr();
        problems.forEach(p -> err.println("fp8q: check: " + p));
        out.printf("FAILED: %d problem(s) in %d tensors checked%n", problems.size(), checked);
        return ExitCodes.FAILED_CHECK;
    }
}
