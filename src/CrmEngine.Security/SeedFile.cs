using System.Text.Json;
using CrmEngine.Abstractions.Model;

namespace CrmEngine.Security;

/// <summary>A refused security change or seed file; the message names the file, record and field.</summary>
/// <summary>
/// A refusal of the security administration (seed file, users, teams, units, shares, transfer): the message says what is
/// wrong. The base type is wrong input (the API answers 422 naming <see cref="Field"/>); the subtypes say not found,
/// conflict or denied, so that callers map them by type, never by the text.
/// </summary>
public class SecurityAdminException(string message, string? field = null) : Exception(message)
{
    /// <summary>The input the refusal is about (<c>unit</c>, <c>manager</c>, <c>role</c>, <c>id</c> ...), or null.</summary>
    public string? Field { get; } = field;
}

/// <summary>The user, team, role or share the request names (in its path) does not exist. The API answers 404.</summary>
public sealed class SecurityNotFoundException(string message) : SecurityAdminException(message, "id");

/// <summary>The id to create is taken. The API answers 409.</summary>
public sealed class SecurityConflictException(string message) : SecurityAdminException(message, "id");

/// <summary>The acting user lacks a privilege (<see cref="Decision"/> names it). The API answers 403.</summary>
public sealed class SecurityDeniedException(string message, AccessDecision decision) : SecurityAdminException(message)
{
    public AccessDecision Decision { get; } = decision;
}

/// <summary>
/// The seed file (<c>security.json</c>): protected fields, business units, roles, teams and users, readable by an
/// administrator in one file. Privileges are written as <c>"customer": "create:own read:unit write:own"</c> (a privilege
/// left out is none); field rights as <c>"customer.creditLevel": "read"</c> or <c>"customer.*": "read write"</c>.
/// </summary>
public sealed class SeedFile
{
    public required string Path { get; init; }
    public Dictionary<string, List<string>> ProtectedFields { get; init; } = new(StringComparer.Ordinal);
    public List<BusinessUnit> Units { get; init; } = [];
    public List<SecurityRole> Roles { get; init; } = [];
    public List<SecurityTeam> Teams { get; init; } = [];
    public List<SecurityUser> Users { get; init; } = [];

    /// <summary>Reads and checks a seed file; every problem is reported at once, naming the file and the place.</summary>
    public static SeedFile Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new SecurityAdminException($"{path}: cannot read the seed file: {ex.Message}");
        }

        return Parse(text, path);
    }

    public static SeedFile Parse(string json, string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new SecurityAdminException($"{path}: line {(ex.LineNumber ?? 0) + 1}: not valid JSON: {ex.Message}");
        }

        using (doc)
        {
            var errors = new List<string>();
            var seed = new SeedFile { Path = path };
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new SecurityAdminException($"{path}: the file must hold one JSON object with protectedFields, units, roles, teams and users");
            }

            foreach (var property in root.EnumerateObject())
            {
                switch (property.Name)
                {
                    case "protectedFields":
                        foreach (var entity in Each(property.Value, JsonValueKind.Object, "protectedFields", errors))
                        {
                            seed.ProtectedFields[entity.Name] = Strings(entity.Value, $"protectedFields.{entity.Name}", errors);
                        }

                        break;
                    case "units":
                        seed.Units.AddRange(Items(property.Value, "units", errors, (e, at) => new BusinessUnit
                        {
                            Id = Id(e, at, errors),
                            Name = Text(e, "name", at, errors, required: true)!,
                            Parent = Text(e, "parent", at, errors),
                        }));
                        break;
                    case "roles":
                        seed.Roles.AddRange(Items(property.Value, "roles", errors, (e, at) => Role(e, at, errors)));
                        break;
                    case "teams":
                        seed.Teams.AddRange(Items(property.Value, "teams", errors, (e, at) => new SecurityTeam
                        {
                            Id = Id(e, at, errors),
                            Name = Text(e, "name", at, errors, required: true)!,
                            BusinessUnit = Text(e, "unit", at, errors, required: true)!,
                            Description = Text(e, "description", at, errors),
                            Roles = e.TryGetProperty("roles", out var r) ? Strings(r, at + ".roles", errors) : [],
                        }));
                        break;
                    case "users":
                        seed.Users.AddRange(Items(property.Value, "users", errors, (e, at) => User(e, at, errors)));
                        break;
                    default:
                        if (!property.Name.StartsWith('$'))
                        {
                            errors.Add($"'{property.Name}' is not a section (use protectedFields, units, roles, teams, users; '$comment' for notes)");
                        }

                        break;
                }
            }

            CheckNames(seed, errors);
            if (errors.Count > 0)
            {
                throw new SecurityAdminException($"{path}: {errors.Count} problem(s):\n  " + string.Join("\n  ", errors));
            }

            return seed;
        }
    }

    /// <summary>The core entities and their record types (protected field names are checked against their JSON names).</summary>
    public static readonly IReadOnlyDictionary<string, Type> CoreEntityTypes = new Dictionary<string, Type>(StringComparer.Ordinal)
    {
        [EntityNames.Customer] = typeof(Customer),
        [EntityNames.Activity] = typeof(Activity),
        [EntityNames.Order] = typeof(Order),
        [EntityNames.Product] = typeof(Product),
        [EntityNames.Consent] = typeof(ConsentEntry),
    };

    /// <summary>
    /// A typo in an entity or field name would silently grant or protect nothing, so names must be a core entity (its
    /// protected fields real fields of it), <c>*</c>, <c>security</c>, or a plugin entity (<c>plugin_collection</c>).
    /// </summary>
    private static void CheckNames(SeedFile seed, List<string> errors)
    {
        const string known = "use customer, activity, order, product, consent, a plugin entity (plugin_collection), '*' or 'security'";
        bool KnownEntity(string e) => CoreEntityTypes.ContainsKey(e) || e is "*" or SecurityEntities.Administration || (e.Contains('_', StringComparison.Ordinal) && !e.StartsWith('_'));
        foreach (var (entity, fields) in seed.ProtectedFields)
        {
            if (!KnownEntity(entity) || entity is "*" or SecurityEntities.Administration)
            {
                errors.Add($"protectedFields.{entity}: not an entity with fields ({known.Replace(", '*' or 'security'", "", StringComparison.Ordinal)})");
                continue;
            }

            if (CoreEntityTypes.TryGetValue(entity, out var type))
            {
                var names = type.GetProperties().Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
                errors.AddRange(fields.Where(f => !names.Contains(f)).Select(f => $"protectedFields.{entity}: '{f}' is not a field of {entity}"));
            }
        }

        foreach (var role in seed.Roles)
        {
            errors.AddRange(role.Privileges.Keys.Where(e => !KnownEntity(e)).Select(e => $"roles ({role.Id}).privileges.{e}: unknown entity ({known})"));
            foreach (var field in role.Fields.Keys)
            {
                var dot = field.LastIndexOf('.'); // entity names may hold dots (plugin ids): the field is after the last one
                var (entity, name) = (field[..dot], field[(dot + 1)..]);
                var isProtected = name == "*" || entity == "*" ||
                                  (seed.ProtectedFields.TryGetValue(entity, out var list) && list.Contains(name, StringComparer.OrdinalIgnoreCase));
                if (!isProtected)
                {
                    errors.Add($"roles ({role.Id}).fields.{field}: not a protected field (protectedFields lists them)");
                }
            }
        }
    }

    /// <summary>Parses <c>"create:own read:unit"</c>; unknown words are reported.</summary>
    public static Dictionary<string, AccessDepth> ParsePrivileges(string text, string at, List<string> errors)
    {
        var result = new Dictionary<string, AccessDepth>(StringComparer.Ordinal);
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = word.Split(':');
            if (parts.Length != 2 || !Enum.TryParse<Privilege>(parts[0], ignoreCase: true, out var privilege) || int.TryParse(parts[0], out _))
            {
                errors.Add($"{at}: '{word}' is not privilege:depth (privileges: create, read, write, delete, assign, share, export)");
                continue;
            }

            if (ParseDepth(parts[1]) is not { } depth)
            {
                errors.Add($"{at}: '{word}': '{parts[1]}' is not a depth (none, own, team, unit, unitAndBelow, all)");
                continue;
            }

            result[AccessContext.Name(privilege)] = depth;
        }

        return result;
    }

    public static AccessDepth? ParseDepth(string text) =>
        Enum.TryParse<AccessDepth>(text, ignoreCase: true, out var depth) && !int.TryParse(text, out _) ? depth : null;

    private static SecurityRole Role(JsonElement e, string at, List<string> errors)
    {
        var role = new SecurityRole
        {
            Id = Id(e, at, errors),
            Name = Text(e, "name", at, errors, required: true)!,
            Description = Text(e, "description", at, errors),
        };
        if (e.TryGetProperty("privileges", out var privileges))
        {
            foreach (var entity in Each(privileges, JsonValueKind.Object, at + ".privileges", errors))
            {
                if (entity.Value.ValueKind != JsonValueKind.String)
                {
                    errors.Add($"{at}.privileges.{entity.Name}: must be text like \"create:own read:unit\"");
                    continue;
                }

                role.Privileges[entity.Name] = ParsePrivileges(entity.Value.GetString()!, $"{at}.privileges.{entity.Name}", errors);
            }
        }

        if (e.TryGetProperty("fields", out var fields))
        {
            foreach (var field in Each(fields, JsonValueKind.Object, at + ".fields", errors))
            {
                var words = field.Value.ValueKind == JsonValueKind.String ? field.Value.GetString()!.Split(' ', StringSplitOptions.RemoveEmptyEntries) : [];
                if (field.Value.ValueKind != JsonValueKind.String || !field.Name.Contains('.', StringComparison.Ordinal) ||
                    words.Any(w => w is not ("read" or "write" or "none")))
                {
                    errors.Add($"{at}.fields.{field.Name}: use \"entity.field\": \"read\", \"read write\" or \"none\"");
                    continue;
                }

                role.Fields[field.Name] = new FieldRights { Read = words.Contains("read") || words.Contains("write"), Write = words.Contains("write") };
            }
        }

        return role;
    }

    private static SecurityUser User(JsonElement e, string at, List<string> errors)
    {
        var kindText = Text(e, "kind", at, errors) ?? "person";
        if (!Enum.TryParse<UserKind>(kindText, ignoreCase: true, out var kind) || int.TryParse(kindText, out _))
        {
            errors.Add($"{at}.kind: '{kindText}' is not a kind (person, integration, system)");
        }

        var id = Id(e, at, errors);
        if (id.Length > 0 && SecurityNames.Check(id) is null && ReservedUsers.Problem(id, kind) is { } reserved)
        {
            errors.Add($"{at}.id: {reserved}");
        }

        return new SecurityUser
        {
            Id = id,
            Name = Text(e, "name", at, errors, required: true)!,
            Email = Text(e, "email", at, errors),
            Kind = kind,
            BusinessUnit = Text(e, "unit", at, errors, required: true)!,
            Manager = Text(e, "manager", at, errors),
            Locale = Text(e, "locale", at, errors),
            TimeZone = Text(e, "timeZone", at, errors),
            Calendar = Text(e, "calendar", at, errors),
            Teams = e.TryGetProperty("teams", out var t) ? Strings(t, at + ".teams", errors) : [],
            Roles = e.TryGetProperty("roles", out var r) ? Strings(r, at + ".roles", errors) : [],
        };
    }

    private static IEnumerable<T> Items<T>(JsonElement array, string at, List<string> errors, Func<JsonElement, string, T> read)
    {
        if (array.ValueKind != JsonValueKind.Array)
        {
            errors.Add($"{at}: must be a list");
            yield break;
        }

        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            var id = item.ValueKind == JsonValueKind.Object && item.TryGetProperty("id", out var v) && v.ValueKind == JsonValueKind.String ? $" ({v.GetString()})" : "";
            var where = $"{at}[{i++}]{id}";
            if (item.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"{where}: must be an object");
                continue;
            }

            yield return read(item, where);
        }
    }

    private static IEnumerable<JsonProperty> Each(JsonElement e, JsonValueKind kind, string at, List<string> errors)
    {
        if (e.ValueKind != kind)
        {
            errors.Add($"{at}: must be a JSON {kind.ToString().ToLowerInvariant()}");
            return [];
        }

        return e.EnumerateObject();
    }

    private static List<string> Strings(JsonElement e, string at, List<string> errors)
    {
        if (e.ValueKind != JsonValueKind.Array || e.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String))
        {
            errors.Add($"{at}: must be a list of names");
            return [];
        }

        return e.EnumerateArray().Select(x => x.GetString()!).ToList();
    }

    private static string Id(JsonElement e, string at, List<string> errors)
    {
        var id = Text(e, "id", at, errors, required: true) ?? "";
        if (id.Length > 0 && SecurityNames.Check(id) is { } problem)
        {
            errors.Add($"{at}.id: {problem}");
        }

        return id;
    }

    private static string? Text(JsonElement e, string name, string at, List<string> errors, bool required = false)
    {
        if (!e.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required)
            {
                errors.Add($"{at}.{name}: missing");
                return "";
            }

            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            errors.Add($"{at}.{name}: must be text");
            return "";
        }

        return value.GetString();
    }
}

/// <summary>Ids of users, teams, units and roles.</summary>
public static class SecurityNames
{
    /// <summary>Null when <paramref name="id"/> is a valid id, else what is wrong with it.</summary>
    public static string? Check(string id) =>
        id.Length is 0 or > 100 || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '@') || !char.IsAsciiLetterOrDigit(id[0])
            ? $"'{id}' is not a valid id: use 1-100 letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
            : null;
}
