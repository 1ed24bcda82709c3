package dev.fp8q.cli;

import dev.fp8q.formats.DType;
import dev.fp8q.testdata.QwenImageLayout;
import dev.fp8q.testdata.QwenImagePipelines;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.testdata.WanDims;
import dev.fp8q.testdata.WanNaming;
import dev.fp8q.testdata.WanVariant;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** fp8q testdata: deterministic synthetic checkpoints. */
@Command(name = "testdata", mixinStandardHelpOptions = true, description = "Synthetic checkpoints for tests and benchmarks.",
        subcommands = TestdataCommand.Make.class)
final class TestdataCommand {

    @Command(name = "make", mixinStandardHelpOptions = true,
            description = "Write a deterministic Wan 2.2- or Qwen-Image-shaped checkpoint (exact names; full or shrunk dims).")
    static final class Make implements Callable<Integer> {

        @Parameters(paramLabel = "OUT", description = "A .safetensors file, or a folder when sharded or --experts both")
        Path out;

        @Option(names = "--family", defaultValue = "wan", description = "wan or qwen-image (default: ${DEFAULT-VALUE})")
        String family;

        @Option(names = "--pipeline", description = "qwen-image: a whole diffusers pipeline folder (transformer, text_encoder, vae, tokenizer, scheduler)")
        boolean pipeline;

        @Option(names = "--edit", description = "qwen-image --pipeline: Qwen-Image-Edit's pipeline")
        boolean edit;

        @Option(names = "--variant", defaultValue = "t2v-a14b",
                description = "t2v-a14b, i2v-a14b, ti2v-5b, s2v-14b, animate-14b (default: ${DEFAULT-VALUE})")
        String variant;

        @Option(names = "--naming", defaultValue = "original", description = "original or diffusers (default: ${DEFAULT-VALUE})")
        String naming;

        @Option(names = "--size", defaultValue = "tiny", description = "tiny (dim 128, 2 blocks) or full (default: ${DEFAULT-VALUE})")
        String size;

        @Option(names = "--dim", description = "Override dim (a multiple of 128).")
        Integer dim;

        @Option(names = "--ffn", description = "Override the FFN width.")
        Integer ffn;

        @Option(names = "--layers", description = "Override the number of blocks.")
        Integer layers;

        @Option(names = "--dtype", defaultValue = "bf16", description = "bf16, f16 or f32 (default: ${DEFAULT-VALUE})")
        String dtype;

        @Option(names = "--shard-size", description = "Shard at this many bytes (e.g. 5GB, 64MiB), with an index.")
        String shardSize;

        @Option(names = "--experts", defaultValue = "one", description = "one, or both (two-expert variants: a release folder)")
        String experts;

        @Option(names = "--seed", defaultValue = "0")
        long seed;

        @Option(names = "--threads", description = "Worker threads (default: all cores).")
        Integer threads;

        @Option(names = "--force", description = "Replace OUT if it exists.")
        boolean force;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            WanVariant v;
            try {
                v = WanVariant.parse(variant);
            } catch (IllegalArgumentException e) {
                throw new Fp8q.UsageException(e.getMessage());
            }
            WanDims d = switch (size.toLowerCase(Locale.ROOT)) {
                case "tiny" -> WanDims.tiny(v);
                case "full" -> WanDims.full(v);
                default -> throw new Fp8q.UsageException("--size must be tiny or full, not '" + size + "'");
            };
            // Bounds here, where they can be named: past them the writer fails deep inside (or writes no blocks).
            require("--dim", dim, WanDims.HEAD_DIM, 1 << 16, WanDims.HEAD_DIM);
            require("--ffn", ffn, 1, 1 << 20, 1);
            require("--layers", layers, 1, 1000, 1);
            require("--threads", threads, 1, 4096, 1);
            if (dim != null || ffn != null) {
                d = d.withDim(dim != null ? dim : d.dim(), ffn != null ? ffn : d.ffn());
            }
            if (layers != null) {
                d = d.withLayers(layers);
            }
            DType dt = switch (dtype.toLowerCase(Locale.ROOT)) {
                case "bf16" -> DType.BF16;
                case "f16" -> DType.F16;
                case "f32" -> DType.F32;
                default -> throw new Fp8q.UsageException("--dtype must be bf16, f16 or f32, not '" + dtype + "'");
            };
            WanNaming n = switch (naming.toLowerCase(Locale.ROOT)) {
                case "original" -> WanNaming.ORIGINAL;
                case "diffusers" -> WanNaming.DIFFUSERS;
                default -> throw new Fp8q.UsageException("--naming must be original or diffusers");
            };
            boolean both = switch (experts) {
                case "one" -> false;
                case "both" -> true;
                default -> throw new Fp8q.UsageException("--experts must be one or both");
            };
            replaceable();
            long shard = shardSize == null ? 0 : SizeParser.parse(shardSize);
            int t = threads != null ? threads : Runtime.getRuntime().availableProcessors();
            if (family.equalsIgnoreCase("qwen-image")) {
                return qwenImage(size.equalsIgnoreCase("full") ? QwenImageLayout.Dims.full() : QwenImageLayout.Dims.tiny(),
                        dt, shard, t);
            }
            if (!family.equalsIgnoreCase("wan")) {
                throw new Fp8q.UsageException("--family must be wan or qwen-image, not '" + family + "'");
            }
            List<Path> files = WanCheckpoints.make(new WanCheckpoints.Request(v, n, d, dt, shard, both, seed, t), out);
            long bytes = 0;
            for (Path f : files) {
                bytes += Files.size(f);
            }
            spec.commandLine().getOut().printf("wrote %d file(s), %s: %s %s naming, dim %d, %d blocks, %s%n", files.size(),
                    dev.fp8q.converter.report.MemoryReport.human(bytes), v.id, n.name().toLowerCase(Locale.ROOT), d.dim(), d.layers(), dt);
            return ExitCodes.OK;
        }

        private Integer qwenImage(QwenImageLayout.Dims d, DType dt, long shard, int threads) throws Exception {
            if (layers != null) {
                d = new QwenImageLayout.Dims(d.dim(), layers, d.textDim());
            }
            if (dim != null) {
                d = new QwenImageLayout.Dims(dim, d.layers(), d.textDim());
            }
            List<Path> files = pipeline ? QwenImagePipelines.pipeline(d, dt, seed, out, edit, threads)
                    : QwenImagePipelines.transformer(d, dt, seed, out, shard, threads);
            long bytes = 0;
            for (Path f : files) {
                bytes += Files.size(f);
            }
            spec.commandLine().getOut().printf("wrote %d file(s), %s: qwen-image%s %s, dim %d, %d blocks, %s%n", files.size(),
                    dev.fp8q.converter.report.MemoryReport.human(bytes), edit ? "-edit" : "", pipeline ? "pipeline" : "transformer",
                    d.dim(), d.layers(), dt);
            return ExitCodes.OK;
        }

        /**
         * OUT may be replaced (--force) only when it is what this command writes: a file, or a folder of
         * checkpoint and JSON files; never a folder holding anything else.
         */
        private void replaceable() throws java.io.IOException {
            if (!Files.exists(out)) {
                return;
            }
            if (!force) {
                throw new Fp8q.UsageException(out + " exists (use --force to replace it)");
            }
            if (Files.isDirectory(out)) {
                List<String> other = dev.fp8q.formats.OutputGuard.relativeFiles(out).stream()
                        .filter(f -> !f.endsWith(".safetensors") && !f.endsWith(".json")).toList();
                if (!other.isEmpty()) {
                    throw new Fp8q.UsageException(out + " holds files testdata does not write (" + other.getFirst()
                            + (other.size() > 1 ? " and " + (other.size() - 1) + " more" : "") + "): not replaced");
                }
            }
            dev.fp8q.formats.FileTrees.delete(out);
        }

        private static void require(String flag, Integer value, int min, int max, int step) {
            if (value != null && (value < min || value > max || value % step != 0)) {
                throw new Fp8q.UsageException(flag + " must be " + (step > 1 ? "a multiple of " + step + " (the head size) " : "")
                        + "from " + min + " to " + max + ", not " + value);
            }
        }
    }
}
