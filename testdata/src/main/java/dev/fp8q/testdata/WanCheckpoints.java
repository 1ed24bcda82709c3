package dev.fp8q.testdata;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/** Makes synthetic Wan 2.2 checkpoints: one component, or a two-expert release folder. */
public final class WanCheckpoints {

    /** What to make. shardBytes <= 0 writes one .safetensors file per component. */
    public record Request(WanVariant variant, WanNaming naming, WanDims dims, DType dtype, long shardBytes,
            boolean bothExperts, long seed, int threads) {}

    public static final String PREFIX = "diffusion_pytorch_model";
    /** Resource path of the embedded default: a tiny T2V-shaped BF16 checkpoint in the original naming. */
    public static final String EMBEDDED = "/dev/fp8q/testdata/wan-tiny-t2v-bf16.safetensors";

    private WanCheckpoints() {}

    public static Request tinyDefault() {
        return new Request(WanVariant.T2V_A14B, WanNaming.ORIGINAL, WanDims.tiny(WanVariant.T2V_A14B), DType.BF16,
                0, false, 0, 1);
    }

    /**
     * Writes the request under {@code out}: a file (single, one component), a shard folder (sharded, one
     * component), or a release folder with one subfolder per expert. Returns the files written.
     */
    public static List<Path> make(Request r, Path out) throws IOException, FormatException {
        List<WanLayout.Spec> specs = WanLayout.of(r.variant(), r.dims(), r.naming());
        List<Path> written = new ArrayList<>();
        if (r.bothExperts() && r.variant().twoExperts) {
            List<String> folders = r.naming().expertFolders();
            for (int e = 0; e < folders.size(); e++) {
                Path dir = out.resolve(folders.get(e));
                Path target = r.shardBytes() > 0 ? dir : dir.resolve(PREFIX + ".safetensors");
                written.addAll(SyntheticWriter.write(specs, r.dtype(), r.seed() + e, target, PREFIX, r.shardBytes(), r.threads()));
            }
            return written;
        }
        return SyntheticWriter.write(specs, r.dtype(), r.seed(), out, PREFIX, r.shardBytes(), r.threads());
    }

    /** Copies the embedded default checkpoint to a file. */
    public static Path extractEmbedded(Path target) throws IOException {
        try (InputStream in = WanCheckpoints.class.getResourceAsStream(EMBEDDED)) {
            if (in == null) {
                throw new IOException("the embedded default checkpoint is missing from the build");
            }
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
        }
        return target;
    }
}
