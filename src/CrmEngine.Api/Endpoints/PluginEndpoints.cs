using System.Runtime.CompilerServices;
using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Api.Security;
using CrmEngine.PluginHost;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Api.Endpoints;

/// <summary>
/// Plugin endpoints under <c>/api/plugins/{pluginId}/{pattern}</c>, dispatched per request against the plugin host's
/// current declarations: a plugin that becomes Active after the API started is served at once, one that is no longer
/// Active answers 503 naming its state, an unknown plugin or path 404, a known path with another method 405. The
/// scope each endpoint declared is checked here (the route itself needs read). The OpenAPI document lists the
/// declarations of the moment (<see cref="Describe"/>).
/// </summary>
internal static class PluginEndpoints
{
    private static readonly string[] Methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];

    // A declaration's parsed pattern, kept as long as the declaration (its plugin's services) lives.
    private static readonly ConditionalWeakTable<PluginHttpEndpointDeclaration, Compiled> Patterns = new();

    private sealed record Compiled(TemplateMatcher Matcher, RouteTemplate Template, decimal Precedence);

    public static void Map(RouteGroupBuilder api, IServiceProvider engine, ILogger logger)
    {
        if (engine.GetService<PluginHttpEndpoints>() is not { } plugins)
        {
            return;
        }

        foreach (var endpoint in plugins.Declared())
        {
            var d = endpoint.Declaration;
            logger.LogInformation("API: plugin endpoint {Method} /api/plugins/{PluginId}/{Pattern} ({Scope} scope)",
                d.Method, endpoint.PluginId, d.Pattern, d.Scope.ToString().ToLowerInvariant());
        }

        api.MapMethods("/plugins/{pluginId}/{**path}", Methods,
                (Func<HttpContext, string, string?, Task<IResult>>)((context, pluginId, path) => DispatchAsync(plugins, context, pluginId, path, logger)))
            .RequireAuthorization(ApiPolicies.Read)
            .WithTags("Plugins")
            .WithName("PluginEndpoint")
            .WithSummary("An endpoint a plugin declared (listed per plugin below); 404 unknown plugin or path, 405 wrong method, 503 plugin not active")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status405MethodNotAllowed)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
    }

    /// <summary>The plugin endpoints declared right now, for the OpenAPI document.</summary>
    internal static IReadOnlyList<PluginEndpoint> Describe(IServiceProvider engine) =>
        engine.GetService<PluginHttpEndpoints>()?.Declared() ?? [];

    private static async Task<IResult> DispatchAsync(PluginHttpEndpoints plugins, HttpContext context, string pluginId, string? path, ILogger logger)
    {
        if (plugins.Find(pluginId) is not { } info)
        {
            return ApiProblems.Create(404, ApiProblems.Title(404), $"no plugin has the id '{pluginId}'");
        }

        if (info.State != PluginState.Active)
        {
            return Unavailable(pluginId, $"plugin {pluginId} is {info.State}" + (info.Reason is { } r ? $" ({r})" : ""), info.State.ToString());
        }

        var relative = "/" + (path ?? "");
        var matches = new List<(PluginEndpoint Endpoint, RouteValueDictionary Values, decimal Precedence)>();
        foreach (var endpoint in plugins.Declared().Where(e => e.PluginId.Equals(info.Id, StringComparison.OrdinalIgnoreCase)))
        {
            if (Compile(endpoint, logger) is not { } compiled)
            {
                continue;
            }

            var values = new RouteValueDictionary();
            if (compiled.Matcher.TryMatch(relative, values) && ConstraintsHold(context, compiled.Template, values))
            {
                matches.Add((endpoint, values, compiled.Precedence));
            }
        }

        if (matches.Count == 0)
        {
            return ApiProblems.Create(404, ApiProblems.Title(404), $"plugin {pluginId} has no endpoint at '{relative}'");
        }

        // As ASP.NET routing does: literal segments before parameters, then the first declared.
        var hit = matches.Where(m => m.Endpoint.Declaration.Method.Equals(context.Request.Method, StringComparison.OrdinalIgnoreCase))
            .OrderBy(m => m.Precedence).FirstOrDefault();
        if (hit.Endpoint is null)
        {
            var allowed = matches.Select(m => m.Endpoint.Declaration.Method.ToUpperInvariant()).Distinct().ToList();
            context.Response.Headers.Allow = string.Join(", ", allowed);
            return ApiProblems.Create(405, ApiProblems.Title(405), $"{context.Request.Method} is not allowed on {context.Request.Path}; use {string.Join(" or ", allowed)}");
        }

        var needed = hit.Endpoint.Declaration.Scope;
        if (ApiCaller.ScopeOf(context.User) is not { } granted || granted < needed)
        {
            var forbidden = ProblemAuthorizationResultHandler.Forbidden(context.User, needed);
            return TypedResults.Json(forbidden, ApiJson.Options, ApiProblems.ContentType, forbidden.Status);
        }

        return await InvokeAsync(plugins, hit.Endpoint, hit.Values, relative, context);
    }

    private static Compiled? Compile(PluginEndpoint endpoint, ILogger logger)
    {
        if (Patterns.TryGetValue(endpoint.Declaration, out var known))
        {
            return known;
        }

        try
        {
            var template = TemplateParser.Parse(endpoint.Declaration.Pattern.Trim('/'));
            var compiled = new Compiled(new TemplateMatcher(template, new RouteValueDictionary()), template, RoutePrecedence.ComputeInbound(template));
            Patterns.AddOrUpdate(endpoint.Declaration, compiled);
            return compiled;
        }
        catch (ArgumentException ex)
        {
            logger.LogError("Plugin {PluginId}: endpoint {Method} {Pattern} is not a usable route pattern: {Error}",
                endpoint.PluginId, endpoint.Declaration.Method, endpoint.Declaration.Pattern, ex.Message);
            return null;
        }
    }

    /// <summary>Inline constraints of the pattern (<c>{id:int}</c>) as routing checks them.</summary>
    private static bool ConstraintsHold(HttpContext context, RouteTemplate template, RouteValueDictionary values)
    {
        var resolver = context.RequestServices.GetService<IInlineConstraintResolver>();
        foreach (var part in template.Parameters)
        {
            foreach (var inline in part.InlineConstraints)
            {
                if (resolver?.ResolveConstraint(inline.Constraint) is { } constraint
                    && !constraint.Match(context, null, part.Name!, values, RouteDirection.IncomingRequest))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static IResult Unavailable(string pluginId, string detail, string state) =>
        ApiProblems.Create(503, "Plugin unavailable", detail, extensions: new Dictionary<string, object?> { ["plugin"] = pluginId, ["state"] = state });

    private static async Task<IResult> InvokeAsync(PluginHttpEndpoints plugins, PluginEndpoint endpoint, RouteValueDictionary values, string path,
        HttpContext context)
    {
        var http = context.Request;
        using var buffer = new MemoryStream();
        await http.Body.CopyToAsync(buffer, context.RequestAborted);
        var request = new PluginHttpRequest
        {
            Method = http.Method,
            Path = path,
            RouteValues = values
                .Where(kv => kv.Value is not null)
                .ToDictionary(kv => kv.Key, kv => Convert.ToString(kv.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "", StringComparer.OrdinalIgnoreCase),
            Query = http.Query.ToDictionary(kv => kv.Key, kv => kv.Value.Select(v => v ?? "").ToArray(), StringComparer.OrdinalIgnoreCase),
            // Credentials stay with the host: the plugin sees who calls (Actor), never the key.
            Headers = http.Headers
                .Where(h => !h.Key.Equals("Authorization", StringComparison.OrdinalIgnoreCase)
                            && !h.Key.Equals(ApiKeyAuthenticationHandler.HeaderName, StringComparison.OrdinalIgnoreCase)
                            && !h.Key.Equals("Cookie", StringComparison.OrdinalIgnoreCase))
                .ToDictionary(h => h.Key, h => h.Value.Select(v => v ?? "").ToArray(), StringComparer.OrdinalIgnoreCase),
            Body = buffer.ToArray(),
            Actor = context.CrmActor(),
            Access = new PluginRecordAccess(await context.CrmAccessAsync()),
        };

        var outcome = await plugins.InvokeAsync(endpoint, request, context.RequestAborted);
        if (outcome.Response is not { } response)
        {
            return outcome.FailureStatus == 503
                ? Unavailable(endpoint.PluginId, outcome.Failure!, plugins.Find(endpoint.PluginId)?.State.ToString() ?? "unknown")
                : ApiProblems.Create(outcome.FailureStatus == 499 ? 500 : outcome.FailureStatus, "Plugin endpoint failed", outcome.Failure!,
                    extensions: new Dictionary<string, object?> { ["plugin"] = endpoint.PluginId });
        }

        return new PluginResult(response);
    }

    private sealed class PluginResult(PluginHttpResponse response) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            var r = httpContext.Response;
            r.StatusCode = response.StatusCode;
            foreach (var (name, value) in response.Headers)
            {
                if (!name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) && !name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
                {
                    r.Headers[name] = value;
                }
            }

            if (response.ContentType is { } type)
            {
                r.ContentType = type;
            }

            if (!response.Body.IsEmpty)
            {
                await r.Body.WriteAsync(response.Body, httpContext.RequestAborted);
            }
        }
    }
}
