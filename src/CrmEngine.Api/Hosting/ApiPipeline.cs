using System.Text.Json;
using CrmEngine.Abstractions.Http;
using CrmEngine.Api.Endpoints;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Api.Hosting;

/// <summary>The API's middleware (errors as problem details, per-endpoint body limits, API-key auth) and its endpoints.</summary>
internal static class ApiPipeline
{
    public static void Configure(WebApplication app, IServiceProvider engine, ILogger logger)
    {
        app.Use((context, next) => ProblemsForErrorsAsync(context, next, logger));
        app.UseStatusCodePages(); // a bare 404/405/415 from routing gets a problem body too
        app.UseRouting();
        app.Use(ApplyBodyLimit);
        app.UseAuthentication();
        app.UseAuthorization();

        ApiOpenApi.Map(app);
        HealthEndpoints.Map(app);

        // Everything under /api needs a key with at least the read scope; each endpoint names the scope it needs.
        var api = app.MapGroup("/api").RequireAuthorization(ApiPolicies.Read);
        ChangesEndpoints.Map(api);
        PluginEndpoints.Map(api, engine, logger);
        foreach (var module in engine.GetServices<IApiEndpointModule>())
        {
            module.Map(api, app);
        }
    }

    /// <summary>Problems written by the framework itself (no route, wrong method, body too large) say what happened.</summary>
    internal static void DescribeStatus(ProblemDetailsContext problem)
    {
        var request = problem.HttpContext.Request;
        problem.ProblemDetails.Instance ??= request.Path;
        problem.ProblemDetails.Detail ??= problem.ProblemDetails.Status switch
        {
            404 => $"no endpoint answers {request.Path}",
            405 => $"{request.Method} is not allowed on {request.Path}",
            413 => $"the request body is larger than the limit of {problem.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize} bytes",
            415 => "send the body as JSON (Content-Type: application/json)",
            _ => null,
        };
    }

    /// <summary>An endpoint's <see cref="IRequestSizeLimitMetadata"/> (for example the CSV import) replaces the global limit.</summary>
    private static Task ApplyBodyLimit(HttpContext context, Func<Task> next)
    {
        if (context.GetEndpoint()?.Metadata.GetMetadata<IRequestSizeLimitMetadata>() is { } limit
            && context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = limit.MaxRequestBodySize;
        }

        return next();
    }

    private static async Task ProblemsForErrorsAsync(HttpContext context, Func<Task> next, ILogger logger)
    {
        try
        {
            await next();
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nobody is left to answer.
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            context.Response.Clear();
            await ApiProblems.WriteAsync(context, ProblemFor(ex, context, logger));
        }
    }

    internal static Microsoft.AspNetCore.Mvc.ProblemDetails ProblemFor(Exception ex, HttpContext context, ILogger logger)
    {
        if (ApiProblems.Map(ex) is { } store)
        {
            ApiAccess.LogIfRefused(context, ex);
            return store;
        }

        if (ex is BadHttpRequestException bad)
        {
            if (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                var limit = context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
                return ApiProblems.Build(413, ApiProblems.Title(413), $"the request body is larger than the limit of {limit} bytes");
            }

            if (Innermost<JsonException>(ex) is { } json)
            {
                var field = FieldOf(json.Path);
                var message = JsonMessage(json);
                return ApiProblems.Build(400, "Invalid JSON", field is null ? message : $"{field}: {message}",
                    field is null ? null : [new ApiFieldError(field, message)]);
            }

            return ApiProblems.Build(bad.StatusCode, ApiProblems.Title(bad.StatusCode), bad.Message);
        }

        if (ex is JsonException direct)
        {
            var field = FieldOf(direct.Path);
            var message = JsonMessage(direct);
            return ApiProblems.Build(400, "Invalid JSON", field is null ? message : $"{field}: {message}",
                field is null ? null : [new ApiFieldError(field, message)]);
        }

        logger.LogError(ex, "API request {Method} {Path} failed", context.Request.Method, context.Request.Path);
        return ApiProblems.Build(500, ApiProblems.Title(500),
            $"the engine could not complete the request ({ex.GetType().Name}); the engine log has the details (trace {context.TraceIdentifier})");
    }

    private static T? Innermost<T>(Exception ex) where T : Exception
    {
        T? found = null;
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            if (e is T t)
            {
                found = t;
            }
        }

        return found;
    }

    /// <summary><c>$.address.city</c> → <c>address.city</c>; the document root (<c>$</c>) names no field.</summary>
    internal static string? FieldOf(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$")
        {
            return null;
        }

        return path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
    }

    private static string JsonMessage(JsonException json)
    {
        // System.Text.Json names the .NET type; integrators need the field and the rule, said plainly.
        var message = json.Message;
        if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
        {
            var start = message.IndexOf('\'', StringComparison.Ordinal);
            var end = start >= 0 ? message.IndexOf('\'', start + 1) : -1;
            var name = end > start ? message[(start + 1)..end] : "?";
            return $"unknown field '{name}'";
        }

        if (message.Contains("could not be converted to", StringComparison.Ordinal))
        {
            var target = message[(message.IndexOf("could not be converted to", StringComparison.Ordinal) + "could not be converted to".Length)..]
                .Split('.', 2)[0].Trim();
            return $"wrong type: expected {Friendly(target)}";
        }

        if (message.Contains("missing required properties", StringComparison.Ordinal))
        {
            var start = message.IndexOf("properties including:", StringComparison.Ordinal);
            return start >= 0 ? "missing required field(s):" + message[(start + "properties including:".Length)..].TrimEnd('.') : "missing required fields";
        }

        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }

    private static string Friendly(string type)
    {
        var t = type.Replace("System.Nullable`1[", "", StringComparison.Ordinal).TrimEnd(']');
        t = t[(t.LastIndexOf('.') + 1)..];
        return t switch
        {
            "String" => "a string",
            "Int32" or "Int64" or "Int16" => "an integer",
            "Decimal" or "Double" or "Single" => "a number",
            "Boolean" => "true or false",
            "DateTimeOffset" or "DateTime" => "a date-time (ISO 8601)",
            "DateOnly" => "a date (yyyy-MM-dd)",
            _ when t.StartsWith("List`1", StringComparison.Ordinal) || t.EndsWith("[]", StringComparison.Ordinal) || t.Contains("`1", StringComparison.Ordinal) => "an array",
            _ => t,
        };
    }
}
