using CrmEngine.Abstractions.Http;
using CrmEngine.Api.Security;
using CrmEngine.PluginHost;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Api.Endpoints;

/// <summary>
/// Plugin endpoints under <c>/api/plugins/{pluginId}/{pattern}</c>: the declarations of the plugins that are Active when
/// the API starts, each behind the scope it declared. A plugin that is no longer Active answers 503 naming its state;
/// any other path under a plugin's prefix falls to a catch-all (404 for an unknown route or plugin, 503 when inactive).
/// </summary>
internal static class PluginEndpoints
{
    public static void Map(RouteGroupBuilder api, IServiceProvider engine, ILogger logger)
    {
        if (engine.GetService<PluginHttpEndpoints>() is not { } plugins)
        {
            return;
        }

        foreach (var endpoint in plugins.Declared())
        {
            var d = endpoint.Declaration;
            var pattern = $"/plugins/{endpoint.PluginId}/{d.Pattern}".TrimEnd('/');
            try
            {
                api.MapMethods(pattern, [d.Method], (Func<HttpContext, Task<IResult>>)(context => InvokeAsync(plugins, endpoint, context)))
                    .RequireAuthorization(ApiPolicies.For(d.Scope))
                    .WithTags("Plugins")
                    .WithName($"plugin:{endpoint.PluginId}:{d.Method}:{d.Pattern}")
                    .WithSummary($"Plugin {endpoint.PluginId}: {d.Method} {d.Pattern} (needs the {d.Scope.ToString().ToLowerInvariant()} scope)")
                    .Produces(StatusCodes.Status200OK, contentType: "application/json")
                    .ProducesProblem(StatusCodes.Status500InternalServerError)
                    .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
                logger.LogInformation("API: plugin endpoint {Method} /api{Pattern} ({Scope} scope)", d.Method, pattern, d.Scope.ToString().ToLowerInvariant());
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or Microsoft.AspNetCore.Routing.Patterns.RoutePatternException)
            {
                logger.LogError("Plugin {PluginId}: endpoint {Method} {Pattern} cannot be mapped: {Error}", endpoint.PluginId, d.Method, d.Pattern, ex.Message);
            }
        }

        api.MapMethods("/plugins/{pluginId}/{**path}", ["GET", "POST", "PUT", "PATCH", "DELETE"], (string pluginId, string? path) => Unmatched(plugins, pluginId, path))
            .RequireAuthorization(ApiPolicies.Read)
            .WithTags("Plugins")
            .WithName("PluginFallback")
            .WithSummary("Any other path under a plugin's prefix: 404 (no such plugin or route) or 503 (the plugin is not active)")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
    }

    private static IResult Unmatched(PluginHttpEndpoints plugins, string pluginId, string? path)
    {
        if (plugins.Find(pluginId) is not { } info)
        {
            return ApiProblems.Create(404, "Not found", $"no plugin has the id '{pluginId}'");
        }

        if (info.State != Abstractions.Plugins.PluginState.Active)
        {
            return Unavailable(pluginId, $"plugin {pluginId} is {info.State}" + (info.Reason is { } r ? $" ({r})" : ""), info.State.ToString());
        }

        return ApiProblems.Create(404, "Not found", $"plugin {pluginId} has no endpoint at '/{path}' (or it was added after the API started)");
    }

    private static IResult Unavailable(string pluginId, string detail, string state) =>
        ApiProblems.Create(503, "Plugin unavailable", detail, extensions: new Dictionary<string, object?> { ["plugin"] = pluginId, ["state"] = state });

    private static async Task<IResult> InvokeAsync(PluginHttpEndpoints plugins, PluginEndpoint endpoint, HttpContext context)
    {
        var http = context.Request;
        using var buffer = new MemoryStream();
        await http.Body.CopyToAsync(buffer, context.RequestAborted);
        var prefix = $"/api/plugins/{endpoint.PluginId}";
        var path = http.Path.Value is { } p && p.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) ? p[prefix.Length..] : http.Path.Value ?? "/";
        var request = new PluginHttpRequest
        {
            Method = http.Method,
            Path = path.Length == 0 ? "/" : path,
            RouteValues = context.Request.RouteValues
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
