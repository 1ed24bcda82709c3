package dev.fp8q.formats.manifest;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * fp8q-part.json: what one part of a conversion split across machines ({@code convert --part I/N}) holds, so that
 * {@code fp8q merge} can assemble the single run's output from the N parts and refuse parts that do not belong
 * together. The plan (every shard and the part it went to) is the same in every part of one conversion;
 * fingerprint covers the source's shard names and sizes and every option that changes bytes.
 *
 * @param commandLine the single run's command line: the part's without {@code --part}, DST at {@code dstArg}
 * @param fileOutput the single run writes a file (a file SRC), not a folder
 * @param manifest the single run's manifest as far as this part knows it: every source and component, this
 *     part's tensors and files
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record PartManifest(String tool, String version, int part, int of, String fingerprint, List<String> commandLine,
        int dstArg, boolean fileOutput, List<Shard> shards, List<ComponentOutput> outputs, Manifest manifest) {

    public static final String FILE = "fp8q-part.json";

    /** A source shard (component and path as in the manifest's sources), its output relative to DST, its part. */
    public record Shard(String component, String source, long bytes, String output, int part) {}

    /**
     * What merge writes for a converted component once every shard is there. dir and file as in the manifest's
     * component output; index: the shard index relative to DST, or null; config: the source has a config.json
     * (carried by part 1 at dir/config.json); weightOnly: no runtime is told to quantize, no config written.
     */
    public record ComponentOutput(String component, String dir, String file, String index, boolean config,
            boolean weightOnly) {}

    public void write(Path file) throws IOException {
        Manifest.JSON.writeValue(file.toFile(), this);
    }

    public static PartManifest read(Path file) throws FormatException {
        if (!Files.isRegularFile(file)) {
            throw new FormatException(Rule.IO, file.getParent(), null,
                    "not a partial output of fp8q convert --part (no " + FILE + ")");
        }
        try {
            PartManifest p = Manifest.JSON.readValue(file.toFile(), PartManifest.class);
            if (p == null || !Manifest.TOOL.equals(p.tool()) || p.shards() == null || p.manifest() == null
                    || p.of() < 1 || p.part() < 1 || p.part() > p.of()) {
                throw new FormatException(Rule.INDEX_INVALID, file, null, "not an fp8q part manifest");
            }
            return p;
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new FormatException(Rule.INDEX_INVALID, file, null, "not an fp8q part manifest: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new FormatException(Rule.IO, file, null, e.toString(), e);
        }
    }
}
