using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;

namespace CrmEngine.Api.Resources;

/// <summary>
/// The JSON rules of the resource endpoints: the API's own (<see cref="ApiJson"/>: camelCase, unknown
/// members refused, strict numbers, enums as names) with two more guarantees for request bodies: an
/// enum given as a number is refused (it could store a value that does not exist), and <c>null</c> is
/// refused for members that cannot hold it. A body is taken whole or refused before anything is written.
/// </summary>
internal sealed class ResourceJson
{
    public static ResourceJson Instance { get; } = new();

    private ResourceJson()
    {
        Write = ApiJson.Options;
        var read = new JsonSerializerOptions(ApiJson.Options)
        {
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            RespectNullableAnnotations = true,
        };
        for (var i = read.Converters.Count - 1; i >= 0; i--)
        {
            if (read.Converters[i] is JsonStringEnumConverter)
            {
                read.Converters.RemoveAt(i);
            }
        }

        read.Converters.Add(new JsonStringEnumConverter(namingPolicy: null, allowIntegerValues: false));
        read.MakeReadOnly(populateMissingResolver: true);
        Read = read;
    }

    /// <summary>For responses.</summary>
    public JsonSerializerOptions Write { get; }

    /// <summary>For request bodies: strict.</summary>
    public JsonSerializerOptions Read { get; }

    public IResult Ok<T>(T value, int statusCode = StatusCodes.Status200OK) =>
        Results.Json(value, Write, "application/json; charset=utf-8", statusCode);

    public JsonNode ToNode<T>(T value) => JsonSerializer.SerializeToNode(value, Write) ?? new JsonObject();

    /// <summary>The body as <typeparamref name="T"/>, or the problem that explains why it cannot be read.</summary>
    public async Task<BodyResult<T>> ReadBodyAsync<T>(HttpContext context, bool mergePatch = false) where T : class
    {
        var node = await ReadNodeAsync(context, mergePatch);
        if (node.Problem is not null)
        {
            return new BodyResult<T>(null, node.Problem);
        }

        return Convert<T>(node.Value);
    }

    /// <summary>Converts a JSON tree (for example a merged document) to <typeparamref name="T"/> with the strict rules.</summary>
    public BodyResult<T> Convert<T>(JsonNode? node) where T : class
    {
        if (node is not JsonObject)
        {
            return new BodyResult<T>(null, ResourceProblems.BadRequest("", "the body must be a JSON object"));
        }

        try
        {
            var value = node.Deserialize<T>(Read);
            return value is null
                ? new BodyResult<T>(null, ResourceProblems.BadRequest("", "the body must be a JSON object"))
                : new BodyResult<T>(value, null);
        }
        catch (JsonException ex)
        {
            return new BodyResult<T>(null, ResourceProblems.BadRequest(FieldOf(ex.Path), Explain(ex)));
        }
    }

    /// <summary>A JSON merge patch body (RFC 7396): a JSON object, or the problem that explains why the body is not one.</summary>
    public static async Task<BodyResult<JsonObject>> ReadMergePatchAsync(HttpContext context)
    {
        var patch = await ReadNodeAsync(context, mergePatch: true);
        if (patch.Problem is not null)
        {
            return new BodyResult<JsonObject>(null, patch.Problem);
        }

        return patch.Value is JsonObject obj
            ? new BodyResult<JsonObject>(obj, null)
            : new BodyResult<JsonObject>(null, ResourceProblems.BadRequest("", "a merge patch must be a JSON object"));
    }

    /// <summary><paramref name="current"/> with <paramref name="patch"/> merged in, read back with the strict rules: the record or a problem.</summary>
    public object ApplyMergePatch<T>(T current, JsonObject patch) where T : class
    {
        var merged = Convert<T>(MergePatch.Apply(ToNode(current), patch, Read.PropertyNameCaseInsensitive));
        return merged.Problem ?? (object)merged.Value!;
    }

    /// <summary>The body as a JSON tree; checks the content type first (415 otherwise).</summary>
    public static async Task<BodyResult<JsonNode>> ReadNodeAsync(HttpContext context, bool mergePatch)
    {
        var request = context.Request;
        var mediaType = request.ContentType?.Split(';', 2)[0].Trim();
        var accepted = mediaType is not null
            && (mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
                || (mergePatch && mediaType.Equals("application/merge-patch+json", StringComparison.OrdinalIgnoreCase)));
        if (!accepted)
        {
            var expected = mergePatch ? "application/merge-patch+json (or application/json)" : "application/json";
            return new BodyResult<JsonNode>(null, ResourceProblems.Problem(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type",
                $"The body must be sent as {expected}; the request said '{request.ContentType ?? "(none)"}'."));
        }

        try
        {
            var node = await JsonNode.ParseAsync(request.Body, cancellationToken: context.RequestAborted);
            return node is null
                ? new BodyResult<JsonNode>(null, ResourceProblems.BadRequest("", "a JSON body is required"))
                : new BodyResult<JsonNode>(node, null);
        }
        catch (JsonException ex)
        {
            var where = ex.LineNumber is { } line ? $" (line {line + 1}, position {ex.BytePositionInLine + 1})" : "";
            var message = ex.Message.Contains("does not contain any JSON tokens", StringComparison.Ordinal)
                ? "a JSON body is required"
                : "the body is not valid JSON" + where;
            return new BodyResult<JsonNode>(null, ResourceProblems.BadRequest(FieldOf(ex.Path), message));
        }
    }

    /// <summary>"$.profile.region" → "profile.region"; "$" → "".</summary>
    internal static string FieldOf(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$")
        {
            return "";
        }

        var field = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
        return field.Replace("['", ".", StringComparison.Ordinal).Replace("']", "", StringComparison.Ordinal).TrimStart('.');
    }

    /// <summary>A message for a field that names the problem without .NET type names.</summary>
    private string Explain(JsonException ex)
    {
        var message = ex.Message;
        if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
        {
            return "is not a known field";
        }

        if (message.Contains("null", StringComparison.OrdinalIgnoreCase) && message.Contains("nullability", StringComparison.OrdinalIgnoreCase))
        {
            return "must not be null";
        }

        if (message.Contains("could not be converted", StringComparison.Ordinal))
        {
            return "has a value of the wrong type" + Expected(message);
        }

        if (message.Contains("read-only", StringComparison.OrdinalIgnoreCase))
        {
            return "is read-only";
        }

        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }

    /// <summary>": expected a number" etc., from the .NET type the message names; enums list their values as written.</summary>
    private string Expected(string message)
    {
        const string Marker = "could not be converted to ";
        var start = message.IndexOf(Marker, StringComparison.Ordinal) + Marker.Length;
        var end = message.IndexOf(". Path:", start, StringComparison.Ordinal);
        var typeName = end > start ? message[start..end] : "";
        if (typeName.StartsWith("System.Nullable`1[", StringComparison.Ordinal))
        {
            typeName = typeName["System.Nullable`1[".Length..].TrimEnd(']');
        }

        var enumType = typeof(CrmEngine.Abstractions.Model.Customer).Assembly.GetType(typeName);
        if (enumType is { IsEnum: true })
        {
            return ": expected one of " + string.Join(", ", Enum.GetValues(enumType).Cast<object>().Select(v => JsonSerializer.Serialize(v, enumType, Write).Trim('"')));
        }

        return typeName switch
        {
            "System.String" => ": expected a string",
            "System.Boolean" => ": expected true or false",
            "System.Int32" or "System.Int64" => ": expected a whole number",
            "System.Decimal" or "System.Double" => ": expected a number",
            "System.DateTimeOffset" => ": expected a date and time (ISO 8601, with offset)",
            "System.DateOnly" => ": expected a date (yyyy-MM-dd)",
            _ when typeName.StartsWith("System.Collections.Generic.List", StringComparison.Ordinal) => ": expected an array",
            _ when typeName.StartsWith("System.Collections.Generic.Dictionary", StringComparison.Ordinal) => ": expected an object",
            _ when typeName.StartsWith("CrmEngine.", StringComparison.Ordinal) => ": expected an object",
            _ => "",
        };
    }
}

internal readonly record struct BodyResult<T>(T? Value, IResult? Problem) where T : class;
