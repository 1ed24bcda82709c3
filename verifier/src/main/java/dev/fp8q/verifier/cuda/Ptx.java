package dev.fp8q.verifier.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The kernels' PTX, a resource of the jar made from {@code verifier/src/main/cuda/fp8q.cu} by its build-ptx.sh.
 * Its first line records the SHA-256 of the source it was made from.
 */
public record Ptx(byte[] text) {

    public static final String RESOURCE = "/dev/fp8q/verifier/cuda/fp8q.ptx";
    static final String SOURCE_HASH = "// fp8q-source-sha256: ";

    public static Ptx load() {
        try (InputStream in = Ptx.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("the jar lacks " + RESOURCE);
            }
            return new Ptx(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The SHA-256 (hex) of the CUDA source this PTX was generated from. */
    public String sourceSha256() {
        String first = new String(text, 0, Math.min(text.length, 200), StandardCharsets.US_ASCII).lines().findFirst()
                .orElse("");
        if (!first.startsWith(SOURCE_HASH)) {
            throw new IllegalStateException(RESOURCE + " does not start with its source hash line");
        }
        return first.substring(SOURCE_HASH.length()).trim();
    }

    /** The text with the terminating 0 byte cuModuleLoadData needs (CUDA_ERROR_INVALID_PTX without it). */
    public byte[] forDriver() {
        return Arrays.copyOf(text, text.length + 1);
    }
}
