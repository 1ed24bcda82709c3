package dev.fp8q.cli;

import dev.fp8q.converter.plan.UserRules;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/** The options plan and convert share: preset and the user's rules. */
final class ConversionOptions {

    @Option(names = "--preset", defaultValue = "auto", description = "auto, wan or generic (default: ${DEFAULT-VALUE})")
    String preset;

    @Option(names = "--ignore", paramLabel = "REGEX", description = "Keep matching tensors in high precision (repeatable).")
    List<String> ignore = new ArrayList<>();

    @Option(names = "--quantize", paramLabel = "REGEX", description = "Quantize matching 2-D weights (repeatable).")
    List<String> quantize = new ArrayList<>();

    @Option(names = "--rules", paramLabel = "FILE", description = "JSON rules file: {\"ignore\": [...], \"quantize\": [...]}")
    Path rules;

    UserRules userRules() throws java.io.IOException {
        return rules != null ? UserRules.read(rules, ignore, quantize) : UserRules.of(ignore, quantize);
    }
}
