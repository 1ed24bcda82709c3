package dev.fp8q.cli;

import dev.fp8q.verifier.Verifier;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.function.Consumer;
import picocli.CommandLine.Option;

/** The options of commands that run the model (verify, sensitivity): inputs, where it computes, progress. */
final class RunInputs {

    @Option(names = "--grid", defaultValue = "4,16,16", paramLabel = "F,H,W", description = "Video token grid; Qwen-Image: image token grid (default: ${DEFAULT-VALUE})")
    String grid;

    @Option(names = "--context-tokens", defaultValue = "512", description = "Text tokens (default: ${DEFAULT-VALUE})")
    int contextTokens;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the synthetic inputs (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--latents", paramLabel = "FILE", description = "Chained model: captured latents (safetensors: latents F32 [C, F, H, W], optional timestep F32 0-dim)")
    Path latents;

    @Option(names = "--context", paramLabel = "FILE", description = "Chained model: captured text encoder output (safetensors: context F32 [Lc, 4096])")
    Path context;

    @Option(names = "--device", defaultValue = "auto", paramLabel = "auto|cpu|cuda", description = "Where the model runs: auto takes a GPU when the CUDA driver finds one with FP8 tensor cores "
                    + "(compute capability 8.9+), else the CPU; cuda fails without one (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--quiet", description = "No progress lines on stderr.")
    boolean quiet;

    int[] grid() {
        return parseGrid(grid);
    }

    Verifier.Device device() {
        return device(device);
    }

    static Verifier.Device device(String device) {
        return switch (device.toLowerCase(Locale.ROOT)) {
            case "auto" -> Verifier.Device.AUTO;
            case "cpu" -> Verifier.Device.CPU;
            case "cuda" -> Verifier.Device.CUDA;
            default -> throw new Fp8q.UsageException("--device must be auto, cpu or cuda");
        };
    }

    /** Progress lines on stderr, prefixed with the command's name, unless --quiet. */
    Consumer<String> log(PrintWriter err, String command) {
        return quiet ? s -> { } : s -> {
            err.println("fp8q: " + command + ": " + s);
            err.flush();
        };
    }

    static int[] parseGrid(String s) {
        String[] p = s.split(",");
        if (p.length != 3) {
            throw new Fp8q.UsageException("--grid must be F,H,W, not " + s);
        }
        int[] g = new int[3];
        long tokens = 1;
        for (int i = 0; i < 3; i++) {
            try {
                g[i] = Integer.parseInt(p[i].trim());
            } catch (NumberFormatException e) {
                throw new Fp8q.UsageException("--grid must be three integers F,H,W, not " + s);
            }
            if (g[i] < 1) {
                throw new Fp8q.UsageException("--grid sizes must be at least 1");
            }
            tokens *= g[i];
        }
        if (tokens > 1 << 20) {
            throw new Fp8q.UsageException("--grid " + s + " is " + tokens + " tokens; at most 1048576");
        }
        return g;
    }
}
