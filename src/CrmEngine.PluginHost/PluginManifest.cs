using System.Text.Json;
using System.Text.RegularExpressions;

namespace CrmEngine.PluginHost;

/// <summary>A dependency on another plugin, with the versions of it that are accepted.</summary>
public sealed record PluginDependency(string Id, VersionRange Range);

/// <summary>The parsed <c>plugin.json</c> of one plugin folder.</summary>
public sealed class PluginManifest
{
    public const string FileName = "plugin.json";

    public required string Id { get; init; }
    public required string Name { get; init; }
    public required SemVersion Version { get; init; }

    /// <summary>SDK versions the plugin supports (<c>sdk.min</c> .. <c>sdk.max</c>).</summary>
    public required VersionRange Sdk { get; init; }

    public required IReadOnlyList<PluginDependency> Dependencies { get; init; }

    /// <summary>File name of the entry assembly, relative to the plugin folder.</summary>
    public required string EntryAssembly { get; init; }

    /// <summary>Full path of the manifest file.</summary>
    public required string FilePath { get; init; }
}

/// <summary>A manifest that cannot be used; the message names the file and the field.</summary>
public sealed class PluginManifestException : Exception
{
    public PluginManifestException(string message) : base(message) { }
    public PluginManifestException(string message, Exception inner) : base(message, inner) { }
    public PluginManifestException() { }
}

/// <summary>Reads <c>plugin.json</c> strictly: unknown shapes and missing fields are errors.</summary>
public static partial class PluginManifestReader
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdPattern();

    public static PluginManifest Read(string filePath)
    {
        string json;
        try
        {
            json = File.ReadAllText(filePath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PluginManifestException($"{filePath}: cannot be read: {ex.Message}", ex);
        }

        return Parse(json, filePath);
    }

    /// <summary>Parses manifest text; <paramref name="filePath"/> is used in messages and kept on the result.</summary>
    public static PluginManifest Parse(string json, string filePath)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            var where = ex.LineNumber is { } line ? $" (line {line + 1}, position {(ex.BytePositionInLine ?? 0) + 1})" : "";
            throw new PluginManifestException($"{filePath}: not valid JSON{where}: {FirstSentence(ex.Message)}", ex);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Error(filePath, "(root)", "must be a JSON object");
            }

            var id = RequiredString(root, "id", filePath);
            if (!IdPattern().IsMatch(id))
            {
                throw Error(filePath, "id", $"'{id}' is not a valid plugin id (letters, digits, '.', '_' and '-', starting with a letter or digit)");
            }

            var name = OptionalString(root, "name", filePath) ?? id;
            var versionText = RequiredString(root, "version", filePath);
            if (!SemVersion.TryParse(versionText, out var version, out var versionError))
            {
                throw Error(filePath, "version", versionError);
            }

            if (!TryGet(root, "sdk", out var sdk) || sdk.ValueKind == JsonValueKind.Null)
            {
                throw Error(filePath, "sdk", "is required: the SDK versions this plugin supports, for example { \"min\": \"1.0.0\", \"max\": \"1\" }");
            }

            if (sdk.ValueKind != JsonValueKind.Object)
            {
                throw Error(filePath, "sdk", "must be an object with min and max");
            }

            var sdkMin = RequiredString(sdk, "min", filePath, "sdk.min");
            var sdkMax = RequiredString(sdk, "max", filePath, "sdk.max");
            if (!VersionRange.TryParse(sdkMin, sdkMax, out var sdkRange, out var sdkError))
            {
                throw Error(filePath, "sdk", sdkError);
            }

            var dependencies = new List<PluginDependency>();
            if (TryGet(root, "dependencies", out var deps) && deps.ValueKind != JsonValueKind.Null)
            {
                if (deps.ValueKind != JsonValueKind.Array)
                {
                    throw Error(filePath, "dependencies", "must be an array of { \"id\", \"min\", \"max\" }");
                }

                var i = 0;
                foreach (var dep in deps.EnumerateArray())
                {
                    var field = $"dependencies[{i}]";
                    if (dep.ValueKind != JsonValueKind.Object)
                    {
                        throw Error(filePath, field, "must be an object { \"id\", \"min\", \"max\" }");
                    }

                    var depId = RequiredString(dep, "id", filePath, field + ".id");
                    if (!IdPattern().IsMatch(depId))
                    {
                        throw Error(filePath, field + ".id", $"'{depId}' is not a valid plugin id");
                    }

                    if (string.Equals(depId, id, StringComparison.OrdinalIgnoreCase))
                    {
                        throw Error(filePath, field + ".id", "a plugin cannot depend on itself");
                    }

                    if (dependencies.Any(d => string.Equals(d.Id, depId, StringComparison.OrdinalIgnoreCase)))
                    {
                        throw Error(filePath, field + ".id", $"'{depId}' is listed twice");
                    }

                    var min = OptionalString(dep, "min", filePath, field + ".min");
                    var max = OptionalString(dep, "max", filePath, field + ".max");
                    if (!VersionRange.TryParse(min, max, out var range, out var rangeError))
                    {
                        throw Error(filePath, field, rangeError);
                    }

                    dependencies.Add(new PluginDependency(depId, range));
                    i++;
                }
            }

            var entry = RequiredString(root, "entryAssembly", filePath);
            if (!entry.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) || Path.IsPathRooted(entry) ||
                entry.Contains("..", StringComparison.Ordinal) || entry.IndexOfAny(['/', '\\']) >= 0)
            {
                throw Error(filePath, "entryAssembly", $"'{entry}' must be the file name of a .dll in the plugin folder, for example MyCompany.CrmPlugin.dll");
            }

            return new PluginManifest
            {
                Id = id,
                Name = name,
                Version = version,
                Sdk = sdkRange,
                Dependencies = dependencies,
                EntryAssembly = entry,
                FilePath = filePath,
            };
        }
    }

    private static PluginManifestException Error(string file, string field, string message) =>
        new($"{file}: field '{field}' {message}");

    private static bool TryGet(JsonElement obj, string name, out JsonElement value)
    {
        // Property names are matched case-insensitively so "entryassembly" is not silently ignored.
        foreach (var p in obj.EnumerateObject())
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                value = p.Value;
                return true;
            }
        }

        value = default;
        return false;
    }

    private static string RequiredString(JsonElement obj, string name, string file, string? field = null)
    {
        field ??= name;
        if (!TryGet(obj, name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            throw Error(file, field, "is required");
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw Error(file, field, $"must be a string, found {value.ValueKind.ToString().ToLowerInvariant()}");
        }

        var s = value.GetString()!.Trim();
        return s.Length == 0 ? throw Error(file, field, "must not be empty") : s;
    }

    private static string? OptionalString(JsonElement obj, string name, string file, string? field = null)
    {
        field ??= name;
        if (!TryGet(obj, name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw Error(file, field, $"must be a string, found {value.ValueKind.ToString().ToLowerInvariant()}");
        }

        var s = value.GetString()!.Trim();
        return s.Length == 0 ? null : s;
    }

    private static string FirstSentence(string message)
    {
        var i = message.IndexOf(". ", StringComparison.Ordinal);
        return i > 0 ? message[..i] : message.TrimEnd('.');
    }
}
