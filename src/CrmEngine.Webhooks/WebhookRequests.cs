using System.Text.Json;

namespace CrmEngine.Webhooks;

/// <summary>
/// Reads a subscription body strictly: unknown members and wrong types are refused, each problem named by its field,
/// and nothing is applied unless the whole body is valid.
/// </summary>
internal sealed class SubscriptionInput
{
    private static readonly string[] Known = ["url", "events", "secret", "active", "description"];

    public string? Url { get; private set; }
    public List<string>? Events { get; private set; }
    public string? Secret { get; private set; }
    public bool? Active { get; private set; }
    public string? Description { get; private set; }
    public bool HasDescription { get; private set; }

    public Dictionary<string, string[]> Errors { get; } = new(StringComparer.Ordinal);

    public static SubscriptionInput Read(JsonElement body, bool create, TargetPolicy targets)
    {
        var input = new SubscriptionInput();
        if (body.ValueKind != JsonValueKind.Object)
        {
            input.Add("$", "The body must be a JSON object.");
            return input;
        }

        foreach (var property in body.EnumerateObject())
        {
            var name = Known.FirstOrDefault(k => k.Equals(property.Name, StringComparison.OrdinalIgnoreCase));
            var value = property.Value;
            switch (name)
            {
                case "url":
                    if (value.ValueKind != JsonValueKind.String)
                    {
                        input.Add("url", "must be a string (an http or https URL).");
                    }
                    else
                    {
                        input.Url = value.GetString();
                        if (ValidateUrl(input.Url!, targets) is { } problem)
                        {
                            input.Add("url", problem);
                        }
                    }

                    break;
                case "events":
                    input.ReadEvents(value);
                    break;
                case "secret":
                    if (value.ValueKind != JsonValueKind.String)
                    {
                        input.Add("secret", "must be a string.");
                    }
                    else
                    {
                        input.Secret = value.GetString();
                        if (input.Secret!.Length is < 16 or > 256 || input.Secret.Any(char.IsControl))
                        {
                            input.Add("secret", "must be 16 to 256 characters without control characters (leave it out and one is generated).");
                        }
                    }

                    break;
                case "active":
                    if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    {
                        input.Add("active", "must be true or false.");
                    }
                    else
                    {
                        input.Active = value.GetBoolean();
                    }

                    break;
                case "description":
                    input.HasDescription = true;
                    if (value.ValueKind == JsonValueKind.Null)
                    {
                        input.Description = null;
                    }
                    else if (value.ValueKind != JsonValueKind.String)
                    {
                        input.Add("description", "must be a string or null.");
                    }
                    else
                    {
                        input.Description = value.GetString();
                        if (input.Description!.Length > 500)
                        {
                            input.Add("description", "must be at most 500 characters.");
                        }
                    }

                    break;
                default:
                    input.Add(property.Name, $"unknown field (a subscription has {string.Join(", ", Known)}).");
                    break;
            }
        }

        if (create)
        {
            if (input.Url is null && !input.Errors.ContainsKey("url"))
            {
                input.Add("url", "is required.");
            }

            if (input.Events is null && !input.Errors.ContainsKey("events"))
            {
                input.Add("events", "is required (for example [\"customer.*\"] or [\"*\"]).");
            }
        }
        else if (input.Errors.Count == 0 && input.Url is null && input.Events is null && input.Secret is null && input.Active is null && !input.HasDescription)
        {
            input.Add("$", $"Nothing to change: send at least one of {string.Join(", ", Known)}.");
        }

        return input;
    }

    private void ReadEvents(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            Add("events", "must be an array of event patterns.");
            return;
        }

        var events = new List<string>();
        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                Add($"events[{i}]", "must be a string.");
            }
            else if (WebhookEvents.Validate(item.GetString()!) is { } problem)
            {
                Add($"events[{i}]", problem);
            }
            else if (!events.Contains(item.GetString()!, StringComparer.OrdinalIgnoreCase))
            {
                events.Add(item.GetString()!);
            }

            i++;
        }

        if (i == 0)
        {
            Add("events", "must list at least one event pattern (for example \"customer.*\" or \"*\").");
        }
        else if (i > 100)
        {
            Add("events", "must list at most 100 patterns.");
        }

        Events = events;
    }

    /// <summary>Null when <paramref name="url"/> can be delivered to, else why not.</summary>
    internal static string? ValidateUrl(string url, TargetPolicy targets)
    {
        if (url.Length > 2048)
        {
            return "must be at most 2048 characters.";
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            return $"'{url}' is not an absolute URL.";
        }

        if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
        {
            return $"scheme '{uri.Scheme}' is not supported; use http or https.";
        }

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            return "must not carry a user name or password; receivers verify the X-Crm-Signature header instead.";
        }

        if (!string.IsNullOrEmpty(uri.Fragment))
        {
            return "must not have a fragment (#...).";
        }

        if (TargetGuard.RefuseByText(uri, targets) is { } refused)
        {
            return $"must point at a public address: {refused} (list the host or its range in Webhooks:AllowedHosts, or set Webhooks:AllowPrivateTargets to true, for receivers in your own network).";
        }

        return null;
    }

    private void Add(string field, string message)
    {
        Errors[field] = Errors.TryGetValue(field, out var existing) ? [.. existing, message] : [message];
    }
}
