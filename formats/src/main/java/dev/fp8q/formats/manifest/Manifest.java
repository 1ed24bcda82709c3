package dev.fp8q.formats.manifest;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * fp8-manifest.json: what convert did to every tensor and why. The contract between convert, verify,
 * check and report.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Manifest(String tool, String version, List<String> commandLine, List<Source> sources,
        Map<String, Object> settings, List<ComponentRecord> components, List<String> files,
        List<TensorRecord> tensors, Totals totals, List<LoraRecord> loras) {

    /** Without LoRAs. */
    public Manifest(String tool, String version, List<String> commandLine, List<Source> sources,
            Map<String, Object> settings, List<ComponentRecord> components, List<String> files,
            List<TensorRecord> tensors, Totals totals) {
        this(tool, version, commandLine, sources, settings, components, files, tensors, totals, null);
    }

    public static final String FILE = "fp8-manifest.json";
    /** The tool name and version every fp8q output carries. */
    public static final String TOOL = "fp8q";
    public static final String TOOL_VERSION = "0.1.0";

    /** A source file: component ("" for a plain checkpoint), path relative to SRC (its name for a file SRC), size. */
    public record Source(String component, String file, long bytes) {}

    /**
     * One component of SRC and what became of it. action: "converted" or "copied" (byte for byte, no record per
     * tensor). source and output are relative to SRC and DST ("" for SRC / DST themselves); kind: transformer,
     * text_encoder, vae or other.
     */
    public record ComponentRecord(String name, String kind, String action, String source, String output) {}

    /**
     * One written tensor. action: quantize, preserve, or scale (a scale tensor of a quantized weight).
     * file is relative to DST. sqnr_db is null when the quantization error is zero.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record TensorRecord(String name, String component, String file, String sourceDtype, List<Long> sourceShape,
            String dtype, List<Long> shape, String action, String rule, Float scale, String scaleTensor, Float amax,
            Double sqnrDb, Double underflow, String crc32c, long bytes) {}

    /**
     * A LoRA merged before quantizing: its file (absolute), CRC32C of its bytes, strength, key style (peft, kohya,
     * comfy), how many of its keys were applied, the tensors it changed and the keys --lora-lenient skipped.
     */
    public record LoraRecord(String file, String crc32c, double strength, String style, int keysApplied,
            List<String> targets, List<String> skipped) {}

    public record Totals(int tensors, int quantized, int preserved, long sourceBytes, long outputBytes) {}

    public static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /**
     * Where the manifest of an output lives: {@code DST/fp8-manifest.json} for a folder; beside a file output,
     * {@code <name without .safetensors>.fp8-manifest.json}.
     */
    public static Path locate(Path output) {
        if (Files.isDirectory(output)) {
            return output.resolve(FILE);
        }
        String n = output.getFileName().toString();
        String stem = n.endsWith(".safetensors") ? n.substring(0, n.length() - ".safetensors".length()) : n;
        return output.resolveSibling(stem + "." + FILE);
    }

    /** The manifest of an output (see {@link #locate}), or of the folder output a file lies in; empty if none. */
    public static Optional<Manifest> find(Path output) throws FormatException {
        Path own = locate(output);
        if (Files.isRegularFile(own)) {
            return Optional.of(read(own));
        }
        Path folder = output.toAbsolutePath().resolveSibling(FILE);
        return !Files.isDirectory(output) && Files.isRegularFile(folder) ? Optional.of(read(folder)) : Optional.empty();
    }

    public void write(Path file) throws IOException {
        JSON.writeValue(file.toFile(), this);
    }

    public static Manifest read(Path file) throws FormatException {
        try {
            Manifest m = JSON.readValue(file.toFile(), Manifest.class);
            if (m == null || m.tensors() == null) {
                throw new FormatException(Rule.INDEX_INVALID, file, null, "not an fp8q manifest (no tensors)");
            }
            return m;
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new FormatException(Rule.INDEX_INVALID, file, null, "not an fp8q manifest: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new FormatException(Rule.IO, file, null, e.toString(), e);
        }
    }
}
