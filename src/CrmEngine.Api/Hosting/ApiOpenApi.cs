using CrmEngine.Api.Security;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;

namespace CrmEngine.Api.Hosting;

/// <summary>The OpenAPI document at <c>/openapi/v1.json</c> (no key): every endpoint, its schemas, and the API key scheme.</summary>
internal static class ApiOpenApi
{
    public const string DocumentPath = "/openapi/{documentName}.json";

    public static void Add(IServiceCollection services)
    {
        services.AddOpenApi("v1", options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "CrmEngine API",
                    Version = "v1",
                    Description = "Send an API key in the X-Api-Key header (or Authorization: ApiKey <key>). Keys are made with `crm apikeys create`. " +
                                  "Errors are RFC 7807 problem details. See docs/api.md.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[ApiKeyAuthenticationHandler.SchemeName] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.ApiKey,
                    In = ParameterLocation.Header,
                    Name = ApiKeyAuthenticationHandler.HeaderName,
                    Description = "An API key with the read, write or admin scope (admin includes write, write includes read).",
                };
                return Task.CompletedTask;
            });
            options.AddDocumentTransformer((document, context, _) =>
            {
                AddPluginEndpoints(document, context.ApplicationServices);
                return Task.CompletedTask;
            });
            options.AddOperationTransformer((operation, context, _) =>
            {
                var metadata = context.Description.ActionDescriptor.EndpointMetadata;
                if (metadata.OfType<IAllowAnonymous>().Any() || !metadata.OfType<IAuthorizeData>().Any())
                {
                    return Task.CompletedTask;
                }

                var scope = metadata.OfType<IAuthorizeData>().Select(a => a.Policy).Select(ScopeOf).Max();
                operation.Security ??= [];
                operation.Security.Add(new OpenApiSecurityRequirement
                {
                    [new OpenApiSecuritySchemeReference(ApiKeyAuthenticationHandler.SchemeName, context.Document)] = [],
                });
                operation.Description = ((operation.Description ?? "") + $"\n\nNeeds an API key with the **{scope}** scope.").Trim();
                operation.Responses ??= new OpenApiResponses();
                operation.Responses.TryAdd("401", new OpenApiResponse { Description = "No, unknown, revoked or expired API key (problem details)" });
                operation.Responses.TryAdd("403", new OpenApiResponse { Description = $"The key lacks the {scope} scope (problem details)" });
                return Task.CompletedTask;
            });
        });
    }

    /// <summary>
    /// Plugin endpoints are dispatched per request (a plugin may become Active after the API started), so they are not
    /// routes of their own: each one declared right now is added to the document under its full path.
    /// </summary>
    private static void AddPluginEndpoints(OpenApiDocument document, IServiceProvider services)
    {
        document.Paths ??= new OpenApiPaths();
        foreach (var endpoint in Endpoints.PluginEndpoints.Describe(services))
        {
            var d = endpoint.Declaration;
            // {id:int}, {**rest} and {id?} are all {id} in OpenAPI.
            var pattern = System.Text.RegularExpressions.Regex.Replace(d.Pattern.Trim('/'), @"\{\**([^:}=?]+)[^}]*\}", "{$1}");
            var path = $"/api/plugins/{endpoint.PluginId}/{pattern}".TrimEnd('/');
            if (!document.Paths.TryGetValue(path, out var item) || item is not OpenApiPathItem pathItem)
            {
                pathItem = new OpenApiPathItem();
                document.Paths[path] = pathItem;
            }

            var scope = d.Scope.ToString().ToLowerInvariant();
            var operation = new OpenApiOperation
            {
                OperationId = $"plugin:{endpoint.PluginId}:{d.Method}:{d.Pattern}",
                Summary = $"Plugin {endpoint.PluginId}: {d.Method} {d.Pattern}",
                Description = $"Needs an API key with the **{scope}** scope. 503 when the plugin is not active.",
                Tags = new HashSet<OpenApiTagReference> { new("Plugins", document) },
                Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyAuthenticationHandler.SchemeName, document)] = [] }],
                Parameters = System.Text.RegularExpressions.Regex.Matches(pattern, @"\{([^}]+)\}")
                    .Select(m => (IOpenApiParameter)new OpenApiParameter { Name = m.Groups[1].Value, In = ParameterLocation.Path, Required = true, Schema = new OpenApiSchema { Type = JsonSchemaType.String } })
                    .ToList(),
                Responses = new OpenApiResponses
                {
                    ["200"] = new OpenApiResponse { Description = "The plugin's answer" },
                    ["401"] = new OpenApiResponse { Description = "No, unknown, revoked or expired API key (problem details)" },
                    ["403"] = new OpenApiResponse { Description = $"The key lacks the {scope} scope (problem details)" },
                    ["503"] = new OpenApiResponse { Description = "The plugin is not active (problem details)" },
                },
            };
            pathItem.AddOperation(new HttpMethod(d.Method.ToUpperInvariant()), operation);
        }
    }

    public static void Map(WebApplication app) => app.MapOpenApi(DocumentPath).AllowAnonymous();

    private static string ScopeOf(string? policy) => policy switch
    {
        ApiPolicies.Admin => "admin",
        ApiPolicies.Write => "write",
        _ => "read",
    };
}
