package dev.fp8q.cli;

import dev.fp8q.verifier.Calibration;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import picocli.CommandLine.Option;

/** What static-scale calibration runs on (convert --calibrate, calibrate): inputs, timesteps, samples, percentile. */
final class CalibrationOptions {

    @Option(names = "--timesteps", split = ",", paramLabel = "T", description = "Calibration timesteps (0..1000; default: three over the expert's range)")
    List<Double> timesteps;

    @Option(names = "--samples", defaultValue = "2", description = "Seeds per timestep for synthetic inputs (default: ${DEFAULT-VALUE})")
    int samples;

    @Option(names = "--latents", split = ",", paramLabel = "FILE|DIR", description = "Captured latents (safetensors: latents F32 [C, F, H, W], optional timestep), files or folders of them")
    List<Path> latents = new ArrayList<>();

    @Option(names = "--context", split = ",", paramLabel = "FILE|DIR", description = "Captured text encoder outputs (safetensors: context F32 [Lc, 4096]), files or folders of them")
    List<Path> contexts = new ArrayList<>();

    @Option(names = "--grid", defaultValue = "4,16,16", paramLabel = "F,H,W", description = "Video token grid of synthetic inputs (default: ${DEFAULT-VALUE})")
    String grid;

    @Option(names = "--context-tokens", defaultValue = "512", description = "Text tokens of synthetic inputs (default: ${DEFAULT-VALUE})")
    int contextTokens;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the synthetic inputs (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--percentile", defaultValue = "99.99", paramLabel = "P", description = "Percentile of |x| for --method percentile (default: ${DEFAULT-VALUE})")
    double percentile;

    static Calibration.Method method(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "max" -> Calibration.Method.MAX;
            case "percentile" -> Calibration.Method.PERCENTILE;
            case "mse" -> Calibration.Method.MSE;
            default -> throw new Fp8q.UsageException("calibration method must be max, percentile or mse, not " + s);
        };
    }

    Calibration.Options options(Calibration.Method method, Consumer<String> log) throws IOException {
        if (samples < 1) {
            throw new Fp8q.UsageException("--samples must be 1 or more");
        }
        if (!(percentile > 0 && percentile <= 100)) {
            throw new Fp8q.UsageException("--percentile must be in (0, 100], not " + percentile);
        }
        if (timesteps != null && timesteps.stream().anyMatch(t -> !(t >= 0 && t <= 1000))) {
            throw new Fp8q.UsageException("--timesteps must lie in 0..1000");
        }
        return new Calibration.Options(method, percentile, RunInputs.parseGrid(grid), contextTokens, seed, timesteps,
                samples, files(latents), files(contexts), log);
    }

    /** Files as given, folders as their .safetensors files in natural order. */
    private static List<Path> files(List<Path> given) throws IOException {
        List<Path> out = new ArrayList<>();
        for (Path p : given) {
            if (Files.isDirectory(p)) {
                try (var s = Files.list(p)) {
                    s.filter(f -> f.getFileName().toString().endsWith(".safetensors"))
                            .sorted((a, b) -> NaturalOrder.INSTANCE.compare(a.getFileName().toString(), b.getFileName().toString()))
                            .forEach(out::add);
                }
            } else if (Files.isRegularFile(p)) {
                out.add(p);
            } else {
                throw new java.nio.file.NoSuchFileException(p.toString());
            }
        }
        return out;
    }
}
