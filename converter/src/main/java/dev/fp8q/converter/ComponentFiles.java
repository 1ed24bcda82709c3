package dev.fp8q.converter;

import dev.fp8q.converter.layout.ComfyMetadata;
import dev.fp8q.converter.layout.Layout;
import dev.fp8q.converter.layout.LayoutConfig;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.formats.FileTrees;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.safetensors.ShardIndex;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a converted component gets once every one of its shards is written: its shard index and its layout's
 * configs. They depend on all of the component's tensor records (the preserved Linears, the bytes), so convert
 * writes them after its shards, and merge after assembling the shards of several parts.
 */
public final class ComponentFiles {

    private final Layout layout;
    private final Scaling scaling;
    private final Progress progress;

    ComponentFiles(Layout layout, Scaling scaling, Progress progress) {
        this.layout = layout;
        this.scaling = scaling;
        this.progress = progress;
    }

    /**
     * @param out the component's folder in the output
     * @param file its single-file output's name, or null for a folder component
     * @param index the shard index's file name in out, or null when the source has none
     * @param sourceConfig the source's config.json, or null
     * @param records the output's tensor records (those of other components are skipped)
     */
    void write(Path out, String component, String file, String index, boolean weightOnly, Path sourceConfig,
            List<Manifest.TensorRecord> records) throws IOException {
        if (index != null) {
            Map<String, String> weightMap = new LinkedHashMap<>();
            long totalOut = 0;
            for (Manifest.TensorRecord r : records) {
                if (r.component().equals(component)) {
                    weightMap.put(r.name(), r.file().substring(r.file().lastIndexOf('/') + 1));
                    totalOut += r.bytes();
                }
            }
            ShardIndex.write(out.resolve(index), totalOut, weightMap);
        }
        if (weightOnly) {
            return; // weight-only storage runs no FP8 GEMM: no runtime is told to quantize, config.json is carried as it is
        }
        if (file != null) {
            singleFileConfigs(out, preservedLinears(records, component));
            return;
        }
        new LayoutConfig(layout, scaling, progress::warn).write(sourceConfig, out, preservedLinears(records, component));
    }

    /**
     * A single-file output (a file SRC, or a .pth converted beside its release's other files) has no folder of its
     * own for the configs a layout writes: writing them beside it would replace the folder's own config.json. They
     * are rendered in a scratch folder and the user is told what the runtime would have read.
     */
    private void singleFileConfigs(Path out, List<String> ignore) throws IOException {
        Path scratch = Files.createTempDirectory(out, ".fp8q-config");
        try {
            new LayoutConfig(layout, scaling, s -> { }).write(null, scratch, ignore);
            for (String name : List.of(LayoutConfig.CONFIG, LayoutConfig.MODELOPT_CONFIG)) {
                Path f = scratch.resolve(name);
                if (Files.isRegularFile(f)) {
                    String json = Files.readString(f).replaceAll("\\s*\n\\s*", " ");
                    progress.warn("a single-file output has no " + name + " of its own; --layout " + layout.id()
                            + " runtimes read it from the model's folder: convert the folder, or add this to its " + name + ": " + json);
                }
            }
        } finally {
            FileTrees.delete(scratch);
        }
    }

    /** Module names of the component's preserved 2-D ".weight" tensors: the layouts' ignore lists. */
    public static List<String> preservedLinears(List<Manifest.TensorRecord> records, String component) {
        List<String> out = new ArrayList<>();
        for (Manifest.TensorRecord r : records) {
            if (r.component().equals(component) && r.action().equals("preserve") && r.name().endsWith(".weight")
                    && r.shape() != null && r.shape().size() == 2) {
                out.add(ComfyMetadata.layerOf(r.name()));
            }
        }
        return out;
    }
}
