"""Views of a project that gates features by plan."""

from django.http import JsonResponse
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from django_bob_payments.permissions import HasActiveSubscription, HasFeature, feature_required


class SubscribersOnly(APIView):
    permission_classes = [IsAuthenticated, HasActiveSubscription]

    def get(self, request):
        return Response({"ok": True})


class SsoOnly(APIView):
    permission_classes = [IsAuthenticated, HasFeature("sso")]

    def get(self, request):
        return Response({"ok": True})


class SubscribersWithApi(APIView):
    permission_classes = [IsAuthenticated, HasActiveSubscription, HasFeature("api")]

    def get(self, request):
        return Response({"ok": True})


@feature_required("api")
def api_feature_view(request):
    return JsonResponse({"ok": True})
